/**
 * The claim walks the queue in index order whatever the statistics say: right after a burst of
 * enqueues they are empty or stale. Each claim statement is explained, as the runtime runs it
 * (same text, parameters and transaction settings), before it runs.
 */
import assert from "node:assert/strict";
import type { SqlDatabase, SqlExecutor } from "@troupe/runtime";
import { claimJobs } from "../../actors/runtime/sql/claim_jobs.ts";
import { PUBLIC_TABLES as t } from "../../actors/runtime/sql/tables.ts";
import { targets } from "../harness.ts";

/** `db` whose transactions explain each statement that takes candidates before running it. */
function explaining(db: SqlDatabase, plans: string[]): SqlDatabase {
  const wrap = (tx: SqlExecutor): SqlExecutor => ({
    async query(text, params, options) {
      if (text.includes("SKIP LOCKED")) {
        const rows = await tx.query<Record<string, string>>(`EXPLAIN ${text}`, params);
        plans.push(rows.map((r) => Object.values(r)[0]).join("\n"));
      }
      return await tx.query(text, params, options);
    },
  });
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop === "transaction") {
        return <T>(fn: (tx: SqlExecutor) => Promise<T>) => target.transaction((tx) => fn(wrap(tx)));
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function enqueue(
  db: SqlExecutor,
  batch: string,
  n: number,
  tenants: (string | null)[],
): Promise<void> {
  await db.query(
    `INSERT INTO ${t.jobs} (id, actor, key, tenant_id, input, max_attempts)
     SELECT $3 || g, 'plan.work', 'k' || (g % 16), ($2::text[])[1 + g % cardinality($2::text[])],
       '{}'::jsonb, 3
     FROM generate_series(1, $1::int) g`,
    [n, tenants, batch],
  );
}

for (const target of targets) {
  Deno.test(`claims walk the tenant claim index, never the whole table (${target.name})`, async () => {
    const tdb = await target.open();
    try {
      const plans: string[] = [];
      const db = explaining(tdb.db, plans);
      const claim = (unordered: string[]) =>
        claimJobs(db, t, {
          actors: ["plan.work"],
          limit: 50,
          workerId: "w-plans",
          leaseMs: 30_000,
          unordered,
        });
      // One tenant group (the jobs without a tenant), keyed and unordered.
      await enqueue(tdb.db, "one", 2000, [null]);
      assert.equal((await claim([])).length, 50);
      assert.equal((await claim(["plan.work"])).length, 50);
      // Several groups: their shares, each from its range.
      await enqueue(tdb.db, "three", 2000, ["a", "b", null]);
      await tdb.db.query(`DELETE FROM ${t.jobs} WHERE status = 'running'`);
      await tdb.db.query(`UPDATE ${t.actorState} SET lease_owner = NULL, lease_until = NULL`);
      assert.ok((await claim([])).length > 0);
      assert.equal(plans.length, 3);
      for (const plan of plans) {
        assert.match(plan, /Index Scan using troupe_jobs_tenant_claim_idx/, plan);
        assert.doesNotMatch(plan, /Seq Scan on troupe_jobs|Bitmap Heap Scan on troupe_jobs/, plan);
      }
    } finally {
      await tdb.cleanup();
    }
  });
}
