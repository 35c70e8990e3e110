/**
 * The sources API: CRUD per tenant, the token sealed and never returned, `baseUrl` under the
 * egress rule, the test call, and bad input as 4xx JSON.
 */
import assert from "node:assert/strict";
import { EgressPolicy } from "../actors/net/egress.ts";
import { SourceStore } from "../actors/usage/sources.ts";
import { generateKeyText, parseKeys, SecretBox } from "../db/secrets.ts";
import { TenantStore } from "../db/tenants.ts";
import { generateUsage } from "../tests/fixtures/usage_api.ts";
import { pgliteTarget } from "../tests/harness.ts";
import { openUsageWorld, TOKEN } from "../tests/usage_world.ts";

Deno.test("sources: CRUD per tenant, the token never shown", async () => {
  const w = await openUsageWorld(pgliteTarget, { messages: generateUsage({ count: 5 }) });
  try {
    const made = await w.call("POST", "/api/v1/sources", {
      name: "billing",
      baseUrl: w.api.url,
      token: TOKEN,
      schedule: "*/15 * * * *",
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = made.body.id;
    assert.equal(made.body.pageSize, 100);
    assert.equal(made.body.schedule, "*/15 * * * *");
    assert.equal(new Date(made.body.nextRunAt).getUTCMinutes() % 15, 0);
    const all = JSON.stringify(await w.call("GET", "/api/v1/sources"));
    assert.ok(!all.includes(TOKEN), "the token is never returned");
    const [row] = await w.tdb.db.query<{ token_sealed: string }>(
      "SELECT token_sealed FROM troupe_usage_sources WHERE id = $1",
      [id],
    );
    assert.match(row!.token_sealed, /^v1\.test\./, "sealed with a key id");
    assert.ok(!row!.token_sealed.includes(TOKEN));

    const patched = await w.call("PATCH", `/api/v1/sources/${id}`, { pageSize: 10, schedule: 5 });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.pageSize, 10);
    assert.equal(patched.body.schedule, "5");

    const test = await w.call("POST", `/api/v1/sources/${id}/test`);
    assert.equal(test.status, 200);
    assert.equal(test.body.ok, true);
    assert.equal(typeof test.body.latencyMs, "number");
    assert.equal(w.api.calls.usage, 1, "one real call");

    // Another tenant sees none of it.
    const tenants = new TenantStore(w.tdb.db);
    const { key } = await tenants.createKey((await tenants.createTenant("other")).id);
    const as = (method: string, path: string) =>
      w.app.request(path, { method, headers: { "x-api-key": key } });
    assert.equal((await as("GET", `/api/v1/sources/${id}`)).status, 404);
    assert.equal((await as("POST", `/api/v1/sources/${id}/sync`)).status, 404);
    assert.equal((await as("DELETE", `/api/v1/sources/${id}`)).status, 404);
    assert.deepEqual(await (await as("GET", "/api/v1/sources")).json(), { items: [] });

    assert.equal((await w.call("DELETE", `/api/v1/sources/${id}`)).status, 204);
    const gone = await w.call("GET", `/api/v1/sources/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, "NOT_FOUND");
  } finally {
    await w.close();
  }
});

Deno.test("sources: bad input and refused URLs are 400s", async () => {
  const w = await openUsageWorld(pgliteTarget, {});
  try {
    const post = (body: unknown) => w.call("POST", "/api/v1/sources", body);
    const base = { name: "x", token: "t" };
    for (
      const [baseUrl, reason] of [
        ["http://10.1.2.3/api", "ADDRESS_NOT_ALLOWED"],
        ["http://169.254.169.254", "ADDRESS_NOT_ALLOWED"],
        ["http://[::1]:9000", "ADDRESS_NOT_ALLOWED"],
        ["ftp://example.com", "SCHEME_NOT_ALLOWED"],
        ["http://user:pw@127.0.0.1", "CREDENTIALS_IN_URL"],
      ] as const
    ) {
      const res = await post({ ...base, baseUrl });
      assert.equal(res.status, 400, `${baseUrl}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.details.reason, reason, String(baseUrl));
    }
    const badSchedule = await post({ ...base, baseUrl: w.api.url, schedule: "61 * * * *" });
    assert.equal(badSchedule.status, 400);
    const extra = await post({ ...base, baseUrl: w.api.url, admin: true });
    assert.equal(extra.status, 400);
    const noToken = await post({ name: "x", baseUrl: w.api.url });
    assert.equal(noToken.status, 400);
    assert.equal((await w.call("GET", "/api/v1/sources/nope")).status, 404);
    assert.equal((await w.call("POST", "/api/v1/sources/nope/sync")).status, 404);
    assert.equal((await w.call("GET", "/api/v1/sources/nope/syncs")).status, 404);
  } finally {
    await w.close();
  }
});

Deno.test("sources: in production a baseUrl must be https", async () => {
  const db = { query: () => Promise.resolve([]) } as never;
  const store = new SourceStore(
    db,
    new SecretBox(parseKeys(generateKeyText("k"))),
    new EgressPolicy({ requireHttps: true, resolve: () => Promise.resolve(["93.184.216.34"]) }),
  );
  await assert.rejects(
    store.create("t", {
      name: "x",
      baseUrl: "http://usage.example.com",
      token: "t",
      pageSize: 100,
      concurrency: 4,
      requestsPerMinute: 600,
      schedule: "30",
    }),
    (err: Error & { details?: { reason?: string } }) =>
      err.name === "ValidationError" && err.details?.reason === "SCHEME_NOT_ALLOWED",
  );
});
