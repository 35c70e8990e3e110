/**
 * `POST /api/v1/jobs/retry`: a dry run counts and lists, a retry replays each failed job once
 * (twice at once: still once), tenants see their own, an admin key every tenant's, bad filters 400.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "@troupe/runtime";
import { openApiWorld } from "../tests/api_world.ts";
import { settle } from "../tests/harness.ts";

/** Fails while `flaky.broken` is true. */
const flaky = { broken: true };
const shaky = defineActor({
  name: "r.shaky",
  input: z.object({ n: z.number().int() }),
  key: (i) => `r.shaky:${i.n}`,
  retries: 0,
  handler: (input) => {
    if (flaky.broken) throw new Error(`broken ${input.n}`);
    return { n: input.n };
  },
});
const other = defineActor({
  name: "r.other",
  input: z.object({ n: z.number().int() }),
  key: (i) => `r.other:${i.n}`,
  retries: 0,
  handler: () => {
    throw new Error("always");
  },
});

Deno.test("bulk retry: dry run, once per failed job, tenant scope, admin scope, bad filters", async () => {
  flaky.broken = true;
  const world = await openApiWorld([shaky, other], () => ({
    perIpPerMinute: 100_000,
    perKeyPerMinute: 100_000,
  }));
  try {
    const { tenants, app, runtime } = world;
    const acme = await tenants.createTenant("acme");
    const globex = await tenants.createTenant("globex");
    const acmeKey = (await tenants.createKey(acme.id)).key;
    const readKey = (await tenants.createKey(acme.id, { name: "r", scope: "read" })).key;
    const globexKey = (await tenants.createKey(globex.id)).key;
    const adminKey = (await tenants.createKey((await tenants.createTenant("ops")).id, {
      admin: true,
    })).key;
    const call = async (key: string, path: string, body?: unknown) => {
      const res = await app.request(path, {
        method: body === undefined ? "GET" : "POST",
        headers: { "content-type": "application/json", "x-api-key": key },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: await res.json() };
    };
    const enqueue = async (key: string, actor: string, n: number) =>
      (await call(key, `/api/v1/actors/${actor}/jobs`, { input: { n } })).body.jobId as string;
    const acmeShaky = [await enqueue(acmeKey, "r.shaky", 1), await enqueue(acmeKey, "r.shaky", 2)];
    const acmeOther = await enqueue(acmeKey, "r.other", 3);
    const globexShaky = await enqueue(globexKey, "r.shaky", 4);
    for (const id of [...acmeShaky, acmeOther, globexShaky]) {
      assert.equal((await settle(runtime, id)).status, "failed");
    }

    // Bad filters and bad scopes.
    const retry = (key: string, body: unknown) => call(key, "/api/v1/jobs/retry", body);
    for (
      const bad of [
        { status: "succeeded" },
        { status: "nope" },
        { actor: "r.unknown" },
        { pipelineId: "a b" },
        { limit: 0 },
        { whatever: 1 },
        { jobIds: [] },
      ]
    ) {
      const res = await retry(acmeKey, bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.body.error.code, "VALIDATION_FAILED");
    }
    assert.equal((await retry(acmeKey, { scope: "all", dryRun: true })).status, 403);
    assert.equal((await retry(readKey, { dryRun: true })).status, 403, "a read key");

    // A dry run: the tenant's own failed jobs of the filter, nothing changes.
    const dry = await retry(acmeKey, { actor: "r.shaky", status: "failed", dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dryRun, true);
    assert.equal(dry.body.count, 2);
    assert.deepEqual(dry.body.jobs.map((j: { jobId: string }) => j.jobId).sort(), acmeShaky.sort());
    assert.equal((await retry(acmeKey, { dryRun: true })).body.count, 3, "every actor's");
    assert.equal((await retry(globexKey, { dryRun: true })).body.count, 1);
    assert.equal((await retry(adminKey, { dryRun: true, scope: "all" })).body.count, 4);
    assert.equal((await retry(adminKey, { dryRun: true })).body.count, 0, "its own tenant's");
    assert.equal(
      (await settle(runtime, acmeShaky[0]!)).status,
      "failed",
      "a dry run changes nothing",
    );

    // The retry, clicked twice at once: each job is replayed once in all.
    flaky.broken = false;
    const body = { actor: "r.shaky", jobIds: dry.body.jobs.map((j: { jobId: string }) => j.jobId) };
    const [a, b] = await Promise.all([retry(acmeKey, body), retry(acmeKey, body)]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(a.body.count + b.body.count, 2, JSON.stringify([a.body, b.body]));
    const retried = [...a.body.jobs, ...b.body.jobs];
    assert.deepEqual(retried.map((j: { jobId: string }) => j.jobId).sort(), acmeShaky.sort());
    for (const j of retried) {
      const job = await settle(runtime, j.retryJobId);
      assert.equal(job.status, "succeeded");
      assert.equal(job.tenantId, acme.id);
    }
    const again = await retry(acmeKey, { actor: "r.shaky" });
    assert.equal(again.body.count, 0, "once per failed job");
    assert.equal((await retry(globexKey, { dryRun: true })).body.count, 1, "globex's untouched");

    // `jobIds` narrows: a job not among them stays failed.
    const narrowed = await retry(adminKey, { scope: "all", jobIds: [globexShaky] });
    assert.equal(narrowed.body.count, 1);
    assert.equal((await settle(runtime, narrowed.body.jobs[0].retryJobId)).status, "succeeded");
    assert.equal((await retry(acmeKey, { dryRun: true })).body.count, 1, "acme's r.other waits");

    const audit = await world.tdb.db.query<{ details: { count: number } }>(
      "SELECT details FROM troupe_audit_log WHERE action = 'jobs.retry' ORDER BY id",
    );
    // One entry per request that replayed jobs; their counts add up to the jobs replayed.
    assert.equal(audit.reduce((n, e) => n + e.details.count, 0), 3);
  } finally {
    flaky.broken = true;
    await world.close();
  }
});
