/**
 * The OpenAPI document covers every `/api` route the app registers, is structurally valid
 * OpenAPI 3.1, and Swagger UI at `/api/docs` loads from this server only.
 */
import assert from "node:assert/strict";
import { documentOnlyUsage } from "../actors/usage/actors.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { servedRoutes } from "../routes/app.ts";
import { type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { localCourseAdapters } from "../tests/local_adapters.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

function openWorld(): Promise<ApiWorld> {
  return openApiWorld([], (tdb) => {
    const blobs = new PostgresBlobStore(tdb.db);
    return {
      maxBodyBytes: 256,
      dataDir: "/nonexistent",
      courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs },
      datasets: { db: tdb.db, blobs },
      usage: documentOnlyUsage(tdb.db),
    };
  });
}

const shared = sharedWorld(openWorld);
const open = shared.open;

const opts = SHARED_WORLD_TEST;
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

type Doc = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components?: { schemas?: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
};

async function document(w: ApiWorld, path = "/api/v1/openapi.json"): Promise<Doc> {
  const res = await w.app.request(path);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return await res.json();
}

/** Hono's `/jobs/:id` (and `:file{regex}`) as OpenAPI's `/jobs/{id}`. */
const openApiPath = (path: string) => path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");

Deno.test(
  { name: "every /api route the app registers is in the OpenAPI document", ...opts },
  async () => {
    const w = await open();
    const doc = await document(w);
    const routes = (await servedRoutes(w.app)).filter((r) =>
      r.path.startsWith("/api/") && r.method !== "ALL" && !r.path.endsWith("*") &&
      // The Swagger UI page's own files are not API operations.
      !/^\/api(\/v1)?\/docs\//.test(r.path)
    );
    const v1 = routes.filter((r) => r.path.startsWith("/api/v1/"));
    const aliases = routes.filter((r) => !r.path.startsWith("/api/v1/"));
    assert.ok(v1.length >= 35, `only ${v1.length} routes found`);
    const missing = v1.filter((r) => !doc.paths[openApiPath(r.path)]?.[r.method.toLowerCase()])
      .map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(missing, []);
    // Each unversioned alias answers for a /api/v1 route, and only those.
    const key = (method: string, path: string) => `${method} ${path}`;
    assert.deepEqual(
      aliases.map((r) => key(r.method, r.path.replace(/^\/api/, "/api/v1"))).sort(),
      v1.map((r) => key(r.method, r.path)).sort(),
    );
    // And nothing documented that does not exist.
    const registered = new Set(v1.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`));
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) {
        assert.ok(registered.has(`${method} ${path}`), `${method} ${path} is not a route`);
      }
    }
  },
);

Deno.test(
  { name: "the OpenAPI document is structurally valid OpenAPI 3.1", ...opts },
  async () => {
    const doc = await document(await open());
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.ok(doc.info.title && doc.info.version);
    const schemes = doc.components?.securitySchemes ?? {};
    assert.ok(schemes.apiKey && schemes.bearer);
    const refs: string[] = [];
    JSON.stringify(doc, (key, value) => {
      if (key === "$ref") refs.push(value);
      return value;
    });
    for (const ref of refs) {
      const name = ref.match(/^#\/components\/schemas\/(.+)$/)?.[1];
      assert.ok(name && doc.components?.schemas?.[name], `dangling $ref ${ref}`);
    }
    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      assert.match(path, /^\/api\/v1\//);
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        assert.ok(METHODS.includes(method), `${method} ${path}`);
        assert.equal(typeof op.summary, "string", `${method} ${path} has a summary`);
        const responses = op.responses as Record<
          string,
          { description?: string; content?: object }
        >;
        assert.ok(Object.keys(responses).length > 0, `${method} ${path} has responses`);
        for (const [status, response] of Object.entries(responses)) {
          assert.match(status, /^([1-5]\d\d|[1-5]XX|default)$/, `${method} ${path} ${status}`);
          assert.equal(typeof response.description, "string", `${method} ${path} ${status}`);
        }
        const error = responses["4XX"]?.content as Record<string, { schema: { $ref?: string } }>;
        assert.equal(error?.["application/json"]?.schema.$ref, "#/components/schemas/Error");
        const params = (op.parameters ?? []) as { name: string; in: string; required?: boolean }[];
        for (const p of params) assert.ok(["path", "query", "header", "cookie"].includes(p.in));
        const inPath = params.filter((p) => p.in === "path");
        assert.deepEqual(
          inPath.map((p) => p.name).sort(),
          [...templated].sort(),
          `${method} ${path}`,
        );
        assert.ok(
          inPath.every((p) => p.required === true),
          `${method} ${path}: path params required`,
        );
        if (typeof op.operationId === "string") {
          assert.ok(!operationIds.has(op.operationId), `duplicate operationId ${op.operationId}`);
          operationIds.add(op.operationId);
        }
      }
    }
  },
);

Deno.test({
  name: "the document describes queries, bodies and answers from the zod schemas",
  ...opts,
}, async () => {
  const doc = await document(await open());
  const list = doc.paths["/api/v1/jobs"]!.get! as {
    parameters: { name: string; in: string; schema: Record<string, unknown> }[];
  };
  const limit = list.parameters.find((p) => p.name === "limit")!;
  assert.equal(limit.in, "query");
  assert.equal(limit.schema.maximum, 100);
  assert.equal(limit.schema.default, 20);
  const status = list.parameters.find((p) => p.name === "status")!;
  assert.deepEqual(status.schema.enum, ["queued", "running", "succeeded", "failed", "cancelled"]);

  const enqueue = doc.paths["/api/v1/actors/{name}/jobs"]!.post! as {
    requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
  };
  const body = enqueue.requestBody.content["application/json"]!.schema;
  assert.deepEqual(Object.keys(body.properties).sort(), [
    "callbackUrl",
    "delayMs",
    "idempotencyKey",
    "input",
    "priority",
  ]);

  const job = doc.paths["/api/v1/jobs/{id}"]!.get!.responses as Record<string, {
    content: Record<string, { schema: Record<string, unknown> }>;
  }>;
  assert.ok(JSON.stringify(job["200"]!.content["application/json"]!.schema).includes("Job"));
  assert.ok(doc.components?.schemas?.Job, "the job view is a named schema");

  const upload = doc.paths["/api/v1/datasets"]!.post! as {
    requestBody: { content: Record<string, unknown> };
    parameters: { name: string }[];
  };
  assert.ok(upload.requestBody.content["text/csv"]);
  assert.ok(upload.requestBody.content["multipart/form-data"]);
  assert.ok(upload.parameters.some((p) => p.name === "errorPolicy"));

  const events = doc.paths["/api/v1/jobs/{id}/events"]!.get!.responses as Record<string, {
    content: Record<string, unknown>;
  }>;
  assert.ok(events["200"]!.content["text/event-stream"]);
  const pdf = doc.paths["/api/v1/courses/{id}/export.pdf"]!.get!.responses as Record<string, {
    content: Record<string, unknown>;
  }>;
  assert.ok(pdf["200"]!.content["application/pdf"]);
  assert.deepEqual(doc.paths["/api/v1/health"]!.get!.security, [], "health needs no key");
});

Deno.test(
  { name: "Swagger UI loads from this server alone, without a key", ...opts },
  async () => {
    const w = await open();
    const page = await w.app.request("/api/docs");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const html = await page.text();
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(urls.length >= 4, html);
    const types: Record<string, RegExp> = {
      ".css": /^text\/css/,
      ".js": /^text\/javascript/,
      ".png": /^image\/png/,
    };
    for (const url of urls) {
      assert.ok(!/^(\w+:)?\/\//.test(url), `${url} is on another host`);
      const res = await w.app.request(new URL(url, "http://troupe.test/api/docs").pathname);
      assert.equal(res.status, 200, url);
      const ext = url.slice(url.lastIndexOf("."));
      assert.match(res.headers.get("content-type") ?? "", types[ext]!, url);
      const text = await res.text();
      assert.ok(text.length > 0, url);
      if (ext === ".js" && url.endsWith("init.js")) assert.match(text, /openapi\.json/);
    }
    const missing = await w.app.request("/api/docs/package.json");
    assert.equal(missing.status, 404, "only the page's files are served");
    await (await w.app.request("/api/docs/..%2Fpackage.json")).body?.cancel();
  },
);

Deno.test(
  { name: "the unversioned paths answer as deprecated aliases of /api/v1", ...opts },
  async () => {
    const w = await open();
    const tenant = await w.tenants.createTenant("aliases");
    const { key } = await w.tenants.createKey(tenant.id);
    const headers = { "x-api-key": key };
    const v1 = await w.app.request("/api/v1/jobs?limit=2", { headers });
    assert.equal(v1.status, 200);
    assert.equal(v1.headers.get("deprecation"), null);
    const old = await w.app.request("/api/jobs?limit=2", { headers });
    assert.equal(old.status, 200);
    assert.deepEqual(await old.json(), await v1.json());
    assert.equal(old.headers.get("deprecation"), "@1796428800");
    assert.equal(old.headers.get("link"), '</api/v1/jobs>; rel="successor-version"');
    // Errors are the same on both, and an alias's error is marked too.
    const bad = await w.app.request("/api/jobs?limit=0", { headers });
    const badV1 = await w.app.request("/api/v1/jobs?limit=0", { headers });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), await badV1.json());
    assert.equal(bad.headers.get("deprecation"), "@1796428800");
    // Public on both; the same document on both.
    for (const path of ["/api/health", "/api/v1/health"]) {
      const res = await w.app.request(path);
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
    assert.deepEqual(await document(w, "/api/openapi.json"), await document(w));
    const none = await w.app.request("/api/nowhere", { headers });
    assert.equal(none.status, 404);
    assert.equal(none.headers.get("deprecation"), null, "no route, no successor");
    await none.body?.cancel();
  },
);

Deno.test(
  { name: "/api/v1 paths get the same path rules as their aliases", ...opts },
  async () => {
    const w = await open();
    const tenant = await w.tenants.createTenant("rules");
    const read = (await w.tenants.createKey(tenant.id, { scope: "read" })).key;
    for (const prefix of ["/api", "/api/v1"]) {
      // A question is a read: a read-only key gets past the write check to the missing course.
      const ask = await w.app.request(`${prefix}/courses/nope/ask`, {
        method: "POST",
        headers: { "x-api-key": read, "content-type": "application/json" },
        body: JSON.stringify({ question: "what is this?" }),
      });
      assert.equal(ask.status, 404, prefix);
      await ask.body?.cancel();
      // An upload is not held to the JSON body limit (256 bytes here): the write check refuses it.
      const upload = await w.app.request(`${prefix}/datasets?name=x`, {
        method: "POST",
        headers: { "x-api-key": read, "content-type": "text/csv" },
        body: "a,b\n" + "1,2\n".repeat(200),
      });
      assert.equal(upload.status, 403, prefix);
      await upload.body?.cancel();
    }
  },
);

Deno.test({ name: "Swagger UI also loads under /api/v1/docs", ...opts }, async () => {
  const w = await open();
  const page = await w.app.request("/api/v1/docs");
  assert.equal(page.status, 200);
  const html = await page.text();
  for (const url of [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)) {
    const res = await w.app.request(new URL(url, "http://troupe.test/api/v1/docs").pathname);
    assert.equal(res.status, 200, url);
    await res.body?.cancel();
  }
});
