import assert from "node:assert/strict";
import { openPglite } from "../drivers/pglite.ts";
import { migrateRuntime } from "../migrate.ts";
import { tables } from "./tables.ts";
import { delayedJobs } from "./workers.ts";
import { queueDepths } from "./queue_depth.ts";

const t = tables();

/** Queued jobs: `[id, tenant, priority, seconds from now until run_at]`. */
async function queue(
  db: Awaited<ReturnType<typeof openPglite>>,
  jobs: [string, string | null, number, number][],
): Promise<void> {
  await db.query(
    `INSERT INTO ${t.jobs} (id, actor, key, tenant_id, input, priority, max_attempts, run_at)
     SELECT x.id, 'w.test', x.id, x.tenant, '{}'::jsonb, x.priority, 3,
       now() + make_interval(secs => x.secs)
     FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS x(id, tenant, priority, secs)`,
    [jobs.map((j) => j[0]), jobs.map((j) => j[1]), jobs.map((j) => j[2]), jobs.map((j) => j[3])],
  );
}

Deno.test("delayedJobs lists the delayed jobs of every tenant group and priority, soonest first", async () => {
  const db = await openPglite();
  try {
    await migrateRuntime(db);
    await queue(db, [
      ["due-a", "a", 0, -10], // due: not delayed
      ["a-p5", "a", 5, 300],
      ["a-p0", "a", 0, 60],
      ["a-m3", "a", -3, 30],
      ["b-p0", "b", 0, 120],
      ["b-p9", "b", 9, 500],
      ["none-p0", null, 0, 90],
      ["none-p2", null, 2, 10],
      ["due-none", null, 2, -5],
      ["empty-p1", "", 1, 200], // the tenant '' shares the group of the jobs without one
    ]);
    const ids = async (tenantId?: string | null, limit = 100) =>
      (await delayedJobs(db, t, { tenantId, limit })).map((j) => j.id);
    assert.deepEqual(await ids(), [
      "none-p2",
      "a-m3",
      "a-p0",
      "none-p0",
      "b-p0",
      "empty-p1",
      "a-p5",
      "b-p9",
    ]);
    assert.deepEqual(await ids(undefined, 3), ["none-p2", "a-m3", "a-p0"]);
    assert.deepEqual(await ids("a"), ["a-m3", "a-p0", "a-p5"]);
    assert.deepEqual(await ids("b"), ["b-p0", "b-p9"]);
    assert.deepEqual(await ids(null), ["none-p2", "none-p0"]);
    assert.deepEqual(await ids(""), ["empty-p1"]);
    assert.deepEqual(await ids("nobody"), []);
  } finally {
    await db.close();
  }
});

Deno.test("queueDepths reads at most its limit of queued jobs, the longest-queued first", async () => {
  const db = await openPglite();
  try {
    await migrateRuntime(db);
    // Ids in creation order (as `uuidv7` makes them); the oldest was due 100 s ago.
    await queue(db, [["j1", null, 0, -100], ["j2", "a", 9, -50], ["j3", "b", 0, -1]]);
    const all = await queueDepths(db, t, 10);
    assert.equal(all.capped, false);
    assert.equal(all.actors[0]!.depth, 3);
    assert.ok(all.actors[0]!.oldestSeconds >= 99, String(all.actors[0]!.oldestSeconds));
    const two = await queueDepths(db, t, 2);
    assert.equal(two.capped, true);
    assert.equal(two.actors[0]!.depth, 2);
    assert.ok(two.actors[0]!.oldestSeconds >= 99, "the oldest job is among those read");
  } finally {
    await db.close();
  }
});
