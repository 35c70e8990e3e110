/**
 * Claims are fair across tenants (`claimJobs`): one tenant's backlog does not hold back another
 * tenant's job, weights (`RuntimeOptions.tenantWeights`) set each tenant's share of a claim,
 * and within a tenant the queue order (priority first) and the claim rules (paused actors,
 * leased keys) still hold. Against every database target. Each test removes its jobs, so the
 * tenants of one test are not in the claims of the next.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { type AnyActor, defineActor, type SqlDatabase } from "@troupe/runtime";
import { type ClaimedJob, claimJobs } from "../../actors/runtime/sql/claim_jobs.ts";
import { PUBLIC_TABLES } from "../../actors/runtime/sql/tables.ts";
import { contractSuite } from "./suite.ts";

function actor(name: string): AnyActor {
  return defineActor({
    name,
    input: z.object({ n: z.number() }),
    key: (i) => `${name}:${i.n}`,
    handler: () => {},
  }) as AnyActor;
}

async function claim(
  db: SqlDatabase,
  actors: string[],
  limit: number,
  tenantWeights?: Record<string, number>,
): Promise<ClaimedJob[]> {
  return await claimJobs(db, PUBLIC_TABLES, {
    actors,
    limit,
    workerId: "fair-worker",
    leaseMs: 30_000,
    ...(tenantWeights ? { tenantWeights } : {}),
  });
}

function perTenant(jobs: ClaimedJob[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const j of jobs) out[j.tenant_id ?? ""] = (out[j.tenant_id ?? ""] ?? 0) + 1;
  return out;
}

/** The first `n` jobs of `tenant`, in queue order (whether claimed since or not). */
async function inQueueOrder(db: SqlDatabase, tenant: string, n: number): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM troupe_jobs WHERE tenant_id = $1
     ORDER BY priority DESC, run_at, id LIMIT $2`,
    [tenant, n],
  );
  return rows.map((r) => r.id);
}

/** Removes the jobs and leases of `prefix`'s actors. */
async function cleanUp(db: SqlDatabase, prefix: string): Promise<void> {
  await db.query("DELETE FROM troupe_jobs WHERE actor LIKE $1", [`${prefix}.%`]);
  await db.query("DELETE FROM troupe_actor_state WHERE key LIKE $1", [`${prefix}.%`]);
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ n: from + i }));

contractSuite("fairness", {
  "a tenant's backlog of 5,000 messages does not hold back another tenant's one": async (
    { db, runtime },
  ) => {
    const api = await runtime([actor("f1.chunk"), actor("f1.job")], { start: false });
    try {
      for (let i = 0; i < 5000; i += 1000) {
        await api.enqueueMany("f1.chunk", range(i, 1000), { tenantId: "f1-big" });
      }
      const { job: small } = await api.enqueue("f1.job", { n: 0 }, { tenantId: "f1-small" });
      const { job: none } = await api.enqueue("f1.job", { n: 1 });

      const first = await claim(db, ["f1.chunk", "f1.job"], 64);
      assert.equal(first.length, 64, "the batch is full");
      const ids = first.map((j) => j.id);
      assert.ok(ids.includes(small.id), "the small tenant's job is in the first claim");
      assert.ok(ids.includes(none.id), "jobs without a tenant are a group of their own");
      assert.deepEqual(perTenant(first), { "f1-big": 62, "f1-small": 1, "": 1 });
      const big = first.filter((j) => j.tenant_id === "f1-big").map((j) => j.id);
      assert.deepEqual(big, await inQueueOrder(db, "f1-big", 62), "its first 62, in order");
    } finally {
      await cleanUp(db, "f1");
    }
  },

  "weights set each tenant's share; capacity one tenant leaves goes to the others": async (
    { db, runtime },
  ) => {
    const api = await runtime([actor("f2.job")], { start: false });
    try {
      // Keys differ across tenants: a key leased by the first claim would be skipped by the next.
      await api.enqueueMany("f2.job", range(0, 200), { tenantId: "f2-heavy" });
      await api.enqueueMany("f2.job", range(1000, 200), { tenantId: "f2-light" });
      await api.enqueueMany("f2.job", range(2000, 5), { tenantId: "f2-few" });

      const weights = { "f2-heavy": 3, "f2-light": 1, "f2-few": 1 };
      const first = await claim(db, ["f2.job"], 45, weights);
      // Shares 27 / 9 / 9; f2-few has 5, its 4 others are split 3:1.
      assert.deepEqual(perTenant(first), { "f2-heavy": 30, "f2-light": 10, "f2-few": 5 });
      const equal = await claim(db, ["f2.job"], 40);
      assert.deepEqual(perTenant(equal), { "f2-heavy": 20, "f2-light": 20 });

      await assert.rejects(
        () => runtime([actor("f2.job")], { start: false, tenantWeights: { "f2-heavy": 0 } }),
        TypeError,
      );
    } finally {
      await cleanUp(db, "f2");
    }
  },

  "within a tenant, priority still comes first": async ({ db, runtime }) => {
    const api = await runtime([actor("f3.job")], { start: false });
    try {
      await api.enqueueMany("f3.job", range(0, 50), { tenantId: "f3-a" });
      const { job: urgent } = await api.enqueue("f3.job", { n: 99 }, {
        tenantId: "f3-a",
        priority: 5,
      });
      const { job: other } = await api.enqueue("f3.job", { n: 100 }, { tenantId: "f3-b" });

      const first = await claim(db, ["f3.job"], 2);
      assert.deepEqual(first.map((j) => j.id), [urgent.id, other.id]);
      const next = await claim(db, ["f3.job"], 3);
      assert.deepEqual(
        next.map((j) => j.id),
        (await inQueueOrder(db, "f3-a", 4)).slice(1),
        "then f3-a in queue order",
      );
    } finally {
      await cleanUp(db, "f3");
    }
  },

  "a paused actor and a leased key are skipped; their tenants' capacity goes to others": async (
    { db, runtime },
  ) => {
    const api = await runtime([actor("f4.paused"), actor("f4.job")], { start: false });
    try {
      await api.enqueueMany("f4.paused", range(0, 20), { tenantId: "f4-a" });
      await api.enqueueMany("f4.job", range(0, 20), { tenantId: "f4-b" });
      await api.enqueueMany("f4.job", range(100, 20), { tenantId: "f4-c" });
      await api.pause("f4.paused");
      await db.query(
        `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until)
         VALUES ('f4.job:0', 1, 'elsewhere', now() + interval '1 minute')`,
      );

      const first = await claim(db, ["f4.paused", "f4.job"], 10);
      assert.deepEqual(perTenant(first), { "f4-b": 5, "f4-c": 5 });
      assert.ok(first.every((j) => j.actor === "f4.job"), "nothing of the paused actor");
      assert.ok(first.every((j) => j.key !== "f4.job:0"), "nothing of the leased key");
    } finally {
      await api.resume("f4.paused");
      await cleanUp(db, "f4");
    }
  },

  "a claim leases each key once: its jobs in queue order under one fence, with its state": async (
    { db, runtime },
  ) => {
    const paired = defineActor({
      name: "f5.job",
      input: z.object({ n: z.number() }),
      key: (i) => `f5.job:${i.n % 2}`,
      handler: () => {},
    }) as AnyActor;
    const api = await runtime([paired], { start: false });
    // One tenant queued (candidates, leases and running mark in one statement), then two (the
    // share rounds, then leases and mark in one statement).
    for (const tenants of [["f5-a"], ["f5-a", "f5-b"]]) {
      try {
        // Key 0 has state and an expired lease of fence 3; key 1 has no row yet.
        await db.query(
          `INSERT INTO troupe_actor_state (key, fence, lease_owner, lease_until, state)
           VALUES ('f5.job:0', 3, 'gone', now() - interval '1 second', '{"count": 7}')`,
        );
        for (const tenantId of tenants) {
          await api.enqueueMany("f5.job", range(0, 4), { tenantId });
        }
        const { job: urgent } = await api.enqueue("f5.job", { n: 5 }, {
          tenantId: "f5-a",
          priority: 2,
        });
        const queued = 4 * tenants.length + 1;
        const jobs = await claim(db, ["f5.job"], 20);
        assert.equal(jobs.length, queued, `all of ${tenants.join(", ")}`);
        assert.equal(jobs[0]!.id, urgent.id, "priority first");
        const order = await db.query<{ id: string }>(
          `SELECT id FROM troupe_jobs WHERE actor = 'f5.job'
           ORDER BY priority DESC, run_at, id`,
        );
        for (const key of ["f5.job:0", "f5.job:1"]) {
          const ofKey = jobs.filter((j) => j.key === key);
          const ids = new Set(ofKey.map((j) => j.id));
          assert.deepEqual(
            ofKey.map((j) => j.id),
            order.map((r) => r.id).filter((id) => ids.has(id)),
            `${key}: queue order`,
          );
        }
        for (const j of jobs) {
          assert.equal(j.lease_fence, j.key === "f5.job:0" ? 4 : 1, `${j.key}: its fence`);
          assert.deepEqual(j.state, j.key === "f5.job:0" ? { count: 7 } : null);
          assert.equal(j.attempts, 1);
        }
        const rows = await db.query<{ status: string; lease_owner: string; n: number }>(
          `SELECT status, lease_owner, count(*)::int AS n FROM troupe_jobs WHERE actor = 'f5.job'
           GROUP BY 1, 2`,
        );
        assert.deepEqual(rows, [{ status: "running", lease_owner: "fair-worker", n: queued }]);
        const leases = await db.query<{ key: string; fence: number; lease_owner: string }>(
          `SELECT key, fence, lease_owner, actor FROM troupe_actor_state
           WHERE key LIKE 'f5.job:%' ORDER BY key`,
        );
        assert.deepEqual(leases, [
          { key: "f5.job:0", fence: 4, lease_owner: "fair-worker", actor: "f5.job" },
          { key: "f5.job:1", fence: 1, lease_owner: "fair-worker", actor: "f5.job" },
        ]);
        assert.deepEqual(await claim(db, ["f5.job"], 20), [], "nothing left to claim");
      } finally {
        await cleanUp(db, "f5");
      }
    }
  },
});
