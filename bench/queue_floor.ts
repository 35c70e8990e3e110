/**
 * The floor of the table queue: the runtime's own claim and commit SQL (`claimJobs`,
 * `completeJobs`) in a loop of batches, with no runtime around it (no dispatcher, executor,
 * committer, lease keeper or notifications), in the benchmark's process. What the runtime adds
 * on top of it is its own cost.
 *
 * The one benchmark file that imports `sql/*` by path (as `tests/contract/` does, and listed
 * with it in tests/runtime_boundary_test.ts): these functions are the runtime's internals, not
 * its API. bench/scaling.ts claims through `claimOnce`.
 */
import type { SqlDatabase } from "@troupe/runtime";
import { type ClaimedJob, claimJobs } from "../actors/runtime/sql/claim_jobs.ts";
import { completeJobs, type Completion } from "../actors/runtime/sql/complete_jobs.ts";
import { tables } from "../actors/runtime/sql/tables.ts";

const t = tables();

/** One claim of up to `limit` jobs of `actor` by the runtime's claim SQL (leases of 30 s). */
export async function claimOnce(
  db: SqlDatabase,
  actor: string,
  limit: number,
  workerId: string,
): Promise<ClaimedJob[]> {
  return await claimJobs(db, t, { actors: [actor], limit, workerId, leaseMs: 30_000 });
}

/** Most jobs claimed and committed in one round (the runtime's default `claimBatch`). */
export const FLOOR_BATCH = 256;

/** Told when each claim and each commit of `floorLoop` ends (a meter splits its time by them). */
export type FloorLap = (phase: "claim" | "commit") => void;

/**
 * Claims and commits (as no-op successes, each key's lease given back with its last job) until
 * `n` jobs succeeded. End to end, the producer runs alongside; an empty claim waits 1 ms.
 */
export async function floorLoop(db: SqlDatabase, n: number, lap?: FloorLap): Promise<void> {
  const workerId = `floor-${crypto.randomUUID()}`;
  let done = 0;
  while (done < n) {
    const jobs = await claimJobs(db, t, {
      actors: ["bench.noop"],
      limit: FLOOR_BATCH,
      workerId,
      leaseMs: 30_000,
    });
    lap?.("claim");
    if (jobs.length === 0) {
      // Nothing enqueued yet (end to end): let the producer run.
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    // The jobs of one key claimed together run under one lease: release it with the last.
    const last = new Map(jobs.map((j) => [j.key, j.id]));
    const completions: Completion[] = jobs.map((j) => ({
      id: j.id,
      key: j.key,
      fence: j.lease_fence,
      outcome: "succeeded",
      result: null,
      sends: [],
      effects: [],
      release: last.get(j.key) === j.id,
      // Pulled, as the runtime's pull path commits them: no ledger row.
      ledger: false,
    }));
    const { results } = await db.transaction((tx) =>
      completeJobs(tx, t, workerId, completions, {
        writes: { outbox: false, notify: true },
        hook: () => null,
        // As the committer commits: one statement, no savepoint (a mismatch throws here).
        allValid: "throw",
      })
    );
    lap?.("commit");
    const bad = results.filter((r) => r !== "committed").length;
    if (bad > 0) throw new Error(`floor: ${bad} completions not committed`);
    done += jobs.length;
  }
}
