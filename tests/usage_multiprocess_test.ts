/**
 * A worker process killed with SIGKILL in the middle of a sync: another worker takes the
 * source's key over once the lease expires and finishes the sync from the committed cursor,
 * every message once and the aggregates exact.
 */
import assert from "node:assert/strict";
import { EgressPolicy } from "../actors/net/egress.ts";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { usageActors } from "../actors/usage/actors.ts";
import { SourceStore } from "../actors/usage/sources.ts";
import { startSync, type UsageDeps } from "../actors/usage/sync.ts";
import { toCents } from "../actors/usage/money.ts";
import { migrate } from "../db/migrate.ts";
import { openPostgres } from "@troupe/runtime/postgres";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { generateKeyText, parseKeys, SecretBox } from "../db/secrets.ts";
import { TenantStore } from "../db/tenants.ts";
import { generateReports, generateUsage, startUsageApi } from "./fixtures/usage_api.ts";
import { createPgDatabase, waitFor } from "./harness.ts";

const WORKER = new URL("./fixtures/usage_worker.ts", import.meta.url).pathname;

async function spawnWorker(url: string, keys: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER, url],
    env: { SECRET_KEYS: keys, LEASE_MS: "1000" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("READY")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the usage worker exited before READY");
    seen += value;
  }
  (async () => {
    try {
      while (!(await reader.read()).done);
    } catch { /* closed */ }
  })();
  return child;
}

Deno.test({
  name: "a worker SIGKILLed mid-sync: another finishes it from the cursor, exact",
}, async () => {
  const { url, drop } = await createPgDatabase();
  const db = openPostgres(url, { max: 4 });
  await migrate(db);
  const messages = generateUsage({ count: 600, reports: 20 });
  const api = startUsageApi({
    token: "tok",
    messages,
    reports: generateReports(20),
    latencyMs: 40,
    overlap: 4,
  });
  const keys = generateKeyText("mp");
  const sources = new SourceStore(
    db,
    new SecretBox(parseKeys(keys)),
    new EgressPolicy({ allow: ["127.0.0.1"] }),
  );
  // This process only starts the sync: its runtime is never started.
  const ref: { runtime?: Runtime } = {};
  const deps: UsageDeps = {
    db,
    sources,
    limiter: new MemoryRateLimiter(),
    runtime: () => ref.runtime!,
  };
  ref.runtime = new Runtime({
    db,
    actors: usageActors(deps),
    transport: new TableQueueTransport(db),
    logger: jsonLogger("silent"),
  });
  const workers: Deno.ChildProcess[] = [];
  try {
    const tenant = await new TenantStore(db).createTenant("mp-usage");
    const source = await sources.create(tenant.id, {
      name: "mp",
      baseUrl: api.url,
      token: "tok",
      pageSize: 30,
      concurrency: 4,
      requestsPerMinute: 100_000,
      schedule: "30",
    });
    const first = await spawnWorker(url, keys);
    workers.push(first);
    const { jobId } = await startSync(deps, {
      tenantId: tenant.id,
      sourceId: source.id,
      trigger: "manual",
    });
    const pagesOf = async () =>
      (await db.query<{ pages: number; status: string }>(
        "SELECT pages, status FROM troupe_usage_syncs WHERE id = $1",
        [jobId],
      ))[0]!;
    await waitFor(async () => (await pagesOf()).pages >= 4, { what: "four pages committed" });
    first.kill("SIGKILL");
    await first.status;
    const atKill = await pagesOf();
    assert.equal(atKill.status, "running", "killed mid-sync");
    workers.push(await spawnWorker(url, keys));
    const done = await waitFor(async () => {
      const s = await pagesOf();
      return s.status !== "running" ? s : null;
    }, { timeoutMs: 60_000, what: "the sync to finish on the second worker" });
    assert.equal(done.status, "succeeded");
    const [snap] = await db.query<{ n: number; cents: string }>(
      `SELECT count(*)::int AS n, sum(credits_cents)::text AS cents FROM troupe_usage_snapshots
        WHERE tenant_id = $1`,
      [tenant.id],
    );
    const [daily] = await db.query<{ n: string; cents: string }>(
      `SELECT sum(messages)::text AS n, sum(credits_cents)::text AS cents FROM troupe_usage_daily
        WHERE tenant_id = $1`,
      [tenant.id],
    );
    const want = messages.reduce((s, m) => s + toCents(m.credits_used), 0n);
    assert.equal(snap!.n, 600, "every message once");
    assert.equal(BigInt(snap!.cents), want);
    assert.equal(Number(daily!.n), 600, "no message counted twice in the aggregates");
    assert.equal(BigInt(daily!.cents), want);
    const [sync] = await db.query<{ messages_new: number }>(
      "SELECT messages_new FROM troupe_usage_syncs WHERE id = $1",
      [jobId],
    );
    assert.equal(sync!.messages_new, 600);
  } finally {
    for (const w of workers) {
      try {
        w.kill("SIGTERM");
      } catch { /* gone */ }
      await w.status;
    }
    await api.close();
    await db.close();
    await drop();
  }
});
