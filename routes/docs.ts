/**
 * `GET /api/openapi.json` (an OpenAPI 3.1 description of the API) and `GET /api/docs` (a
 * readable page of it). Both are public, like health: no API key, no rate limit.
 */
import { Hono } from "hono";

type Op = { summary: string; body?: string; query?: string[]; status: number };

const ops: Record<string, Record<string, Op>> = {
  "/api/health": {
    get: {
      summary: "Database, cache and write status (503 when the database is down or writes " +
        "fail); public and cheap",
      status: 200,
    },
  },
  "/api/keys": {
    get: { summary: "The tenant's API keys (prefix, scope, state; never the keys)", status: 200 },
    post: {
      summary: "Make a key: { name, scope?: full|read, admin? } (admin needs an admin key); " +
        "the key is in this answer only",
      body: "json",
      status: 201,
    },
  },
  "/api/keys/{id}/rotate": {
    post: {
      summary: "Replace a key: { graceSeconds? } (default 3600; the old key works that long)",
      body: "json",
      status: 201,
    },
  },
  "/api/keys/{id}": {
    delete: { summary: "Revoke a key (every instance refuses it within seconds)", status: 204 },
  },
  "/api/health/details": {
    get: {
      summary: "Health plus queue figures (queued, running, dead letters, failed maintenance " +
        "runs) and the cache's hits, misses, hit rate and keys (all tenants' for an admin key)",
      status: 200,
    },
  },
  "/api/actors/{name}/jobs": {
    post: {
      summary: "Enqueue a job: { input, delayMs?, priority?, idempotencyKey? } (or an " +
        "Idempotency-Key header): a repeat returns the first job with 200; the same key with " +
        "another actor or input is 409 IDEMPOTENCY_KEY_REUSED",
      body: "json",
      status: 202,
    },
  },
  "/api/jobs": {
    get: {
      summary: "List jobs (`pipelineId`: the jobs of a pipeline)",
      query: ["actor", "status", "pipelineId", "limit", "cursor"],
      status: 200,
    },
  },
  "/api/jobs/{id}": {
    get: {
      summary:
        "A job: status, progress, attempts, result or error; a pipeline (an upload's job) also its jobs' counts by status",
      status: 200,
    },
  },
  "/api/jobs/{id}/cancel": {
    post: { summary: "Cancel a queued or running job, or a pipeline with its jobs", status: 200 },
  },
  "/api/jobs/{id}/events": {
    get: { summary: "Server-sent events: progress until a terminal state", status: 200 },
  },
  "/api/dead-letters": {
    get: { summary: "Dead letters", query: ["actor", "limit", "cursor"], status: 200 },
  },
  "/api/dead-letters/{id}/replay": { post: { summary: "Replay a dead letter once", status: 202 } },
  "/api/audit": {
    get: { summary: "The tenant's audit log", query: ["limit", "cursor"], status: 200 },
  },
  "/api/cache/stats": {
    get: {
      summary:
        "The tenant's cache hits, misses, keys, memory; degraded (scope=all: an admin key's)",
      query: ["scope"],
      status: 200,
    },
  },
  "/api/cache/invalidate": {
    post: {
      summary:
        "Invalidate the tenant's cache by { prefix?, tag? } (scope: \"all\": an admin key's)",
      body: "json",
      status: 200,
    },
  },
  "/api/datasets": {
    post: {
      summary:
        "Upload a CSV, TSV, JSON array or NDJSON file, optionally gzipped (raw body or multipart `file`)",
      query: [
        "name",
        "format",
        "delimiter",
        "quote",
        "header",
        "encoding",
        "errorPolicy",
        "nullTokens",
        "options",
      ],
      body: "file",
      status: 202,
    },
    get: { summary: "List datasets", query: ["limit", "cursor"], status: 200 },
  },
  "/api/datasets/{id}": {
    get: {
      summary: "A dataset: status, progress, row count, columns with types and profiles",
      status: 200,
    },
    delete: { summary: "Delete a dataset, its rows and its file when unused", status: 204 },
  },
  "/api/datasets/{id}/rows": {
    get: {
      summary: "Rows, keyset pages: filter=col:op:value, sort=col:asc|desc",
      query: ["limit", "cursor", "sort", "filter"],
      status: 200,
    },
  },
  "/api/datasets/{id}/aggregate": {
    get: {
      summary: "Group-by aggregations: groupBy=a,b&metrics=count,sum:x",
      query: ["groupBy", "metrics", "filter"],
      status: 200,
    },
  },
  "/api/datasets/{id}/export": {
    get: { summary: "Streamed export", query: ["format"], status: 200 },
  },
  "/api/datasets/{id}/report.pdf": { get: { summary: "The profile report (PDF)", status: 200 } },
  "/api/courses": {
    post: {
      summary: "Upload 1..20 PDFs (multipart `files`, optional `title`)",
      body: "multipart",
      status: 202,
    },
    get: { summary: "List courses", query: ["limit", "cursor"], status: 200 },
  },
  "/api/courses/{id}": {
    get: { summary: "A course: sources, modules, lessons, quizzes", status: 200 },
    delete: { summary: "Delete a course, its passages, vectors and unshared files", status: 204 },
  },
  "/api/courses/{id}/search": {
    get: {
      summary: "Hybrid search: distinct file, page, section, best first; none when nothing matches",
      query: ["q", "k"],
      status: 200,
    },
  },
  "/api/courses/{id}/ask": {
    post: {
      summary:
        "Answer from the course only, with citations: { question } -> { answered, answer, citations }",
      body: "json",
      status: 200,
    },
  },
  "/api/courses/{id}/export.pdf": { get: { summary: "The course handbook (PDF)", status: 200 } },
  "/api/courses/{id}/cancel": { post: { summary: "Stop the course's pipeline", status: 200 } },
};

/** The OpenAPI 3.1 document. */
export function openApi() {
  const errorRef = { $ref: "#/components/schemas/Error" };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, methods] of Object.entries(ops)) {
    paths[path] = {};
    for (const [method, op] of Object.entries(methods)) {
      const params = [
        ...[...path.matchAll(/\{(\w+)\}/g)].map((m) => ({
          name: m[1],
          in: "path",
          required: true,
          schema: { type: "string" },
        })),
        ...(op.query ?? []).map((name) => ({
          name,
          in: "query",
          required: false,
          schema: { type: "string" },
        })),
      ];
      paths[path]![method] = {
        summary: op.summary,
        ...(path === "/api/health" ? { security: [] } : {}),
        parameters: params,
        ...(op.body
          ? {
            requestBody: {
              required: true,
              content: op.body === "json"
                ? { "application/json": {} }
                : op.body === "multipart"
                ? { "multipart/form-data": {} }
                : {
                  "text/csv": {},
                  "application/json": {},
                  "application/x-ndjson": {},
                  "multipart/form-data": {},
                },
            },
          }
          : {}),
        responses: {
          [String(op.status)]: { description: "OK" },
          "4XX": {
            description:
              "Bad request, unauthenticated, not found, conflict, too large, rate limited",
            content: { "application/json": { schema: errorRef } },
          },
        },
      };
    }
  }
  return {
    openapi: "3.1.0",
    info: { title: "Troupe API", version: "1" },
    components: {
      securitySchemes: {
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        bearer: { type: "http", scheme: "bearer" },
      },
      schemas: {
        Error: {
          type: "object",
          properties: {
            error: {
              type: "object",
              required: ["code", "message"],
              properties: { code: { type: "string" }, message: { type: "string" }, details: {} },
            },
          },
        },
      },
    },
    security: [{ apiKey: [] }, { bearer: [] }],
    paths,
  };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function docsRoutes(): Hono {
  const app = new Hono();
  const spec = openApi();
  app.get("/openapi.json", (c) => c.json(spec));
  app.get("/docs", (c) => {
    const rows = Object.entries(ops).flatMap(([path, methods]) =>
      Object.entries(methods).map(([m, op]) =>
        `<tr><td><code>${m.toUpperCase()}</code></td><td><code>${escape(path)}</code></td><td>${
          escape(op.summary)
        }${
          op.query ? `<br><small>query: ${op.query.map(escape).join(", ")}</small>` : ""
        }</td></tr>`
      )
    );
    return c.html(`<!doctype html><html><head><meta charset="utf-8"><title>Troupe API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
td{padding:.3rem .6rem;border-bottom:1px solid #eee;vertical-align:top}code{font-size:.9em}</style></head>
<body><h1>Troupe API</h1><p>Send <code>X-API-Key: &lt;key&gt;</code> (or <code>Authorization: Bearer</code>) on every
call but health and these docs. Errors are <code>{ "error": { "code", "message", "details?" } }</code>.
Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a>.</p>
<table>${rows.join("\n")}</table></body></html>`);
  });
  return app;
}
