/**
 * The parts of a tenant's deletion that are not a workload's: its keys (first, so nothing new
 * arrives), its open jobs (stopped before the workloads' rows go), then its jobs, actor state,
 * dead letters and audit entries, and last the tenant itself.
 */
import { ConflictError, NotFoundError, TroupeError } from "@troupe/runtime";
import type { TenantDataPart } from "./part.ts";

const BATCH = 5000;

/** Its API keys: none works once this commits (instances forget cached ones within seconds). */
export function accessPart(onRemoved: () => void = () => {}): TenantDataPart {
  return {
    name: "keys",
    async deleteTenantData(ctx) {
      await ctx.step(async (tx) => {
        const gone = await tx.query(
          "DELETE FROM troupe_api_keys WHERE tenant_id = $1 RETURNING 1",
          [ctx.tenantId],
        );
        return { apiKeys: gone.length };
      });
      onRemoved();
    },
  };
}

/** Cancels a job (a pipeline with its jobs); the runtime's `cancel`. */
export type CancelJob = (jobId: string, tenantId: string) => Promise<unknown>;

/**
 * Its queued and running jobs are cancelled, and this waits until none is left open (a
 * cancelled pipeline's abort message runs too): a handler still running would write rows
 * after its workload's part removed them. Past `waitMs` it throws a retryable error, and the
 * deletion's next attempt picks up from here.
 */
export function stopJobsPart(
  cancel: CancelJob,
  { waitMs = 30_000, pollMs = 200 } = {},
): TenantDataPart {
  return {
    name: "jobs",
    async deleteTenantData(ctx) {
      const deadline = Date.now() + waitMs;
      for (;;) {
        const open = await ctx.db.query<{ id: string; cancel_requested: boolean }>(
          `SELECT id, cancel_requested FROM troupe_jobs
           WHERE tenant_id = $1 AND status IN ('queued', 'running')
           ORDER BY (pipeline_id IS NULL OR kind = 'pipeline') DESC, id LIMIT 500`,
          [ctx.tenantId],
        );
        if (!open.length) return;
        let cancelled = 0;
        for (const job of open) {
          ctx.signal.throwIfAborted();
          if (job.cancel_requested) continue; // asked already: its handler is stopping
          try {
            await cancel(job.id, ctx.tenantId);
            cancelled++;
          } catch (err) {
            // Ended meanwhile, or stopped with its pipeline.
            if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) throw err;
          }
        }
        if (cancelled) await ctx.step(() => Promise.resolve({ cancelled }));
        if (Date.now() > deadline) {
          throw new TroupeError(
            "TENANT_JOBS_RUNNING",
            `${open.length} jobs of tenant ${ctx.tenantId} have not stopped yet`,
          );
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
  };
}

/** Deletes `sql`'s rows (`$1` the tenant, `$2` a batch size) batch by batch, tallied as `kind`. */
async function drain(
  ctx: Parameters<TenantDataPart["deleteTenantData"]>[0],
  kind: string,
  sql: string,
): Promise<void> {
  while (!ctx.signal.aborted) {
    const n = (await ctx.step(async (tx) => {
      const [r] = await tx.query<{ n: number }>(sql, [ctx.tenantId, BATCH]);
      return { [kind]: r?.n ?? 0 };
    }))[kind]!;
    if (n < BATCH) return;
  }
}

/**
 * Its jobs, dead letters and the state of the actor instances only its jobs addressed (an
 * instance another tenant's or a tenant-less job addressed is shared and stays).
 */
export const runtimePart: TenantDataPart = {
  name: "runtime",
  async deleteTenantData(ctx) {
    await ctx.step(async (tx) => {
      const gone = await tx.query(
        `DELETE FROM troupe_actor_state s
         WHERE s.key IN (SELECT DISTINCT key FROM troupe_jobs WHERE tenant_id = $1)
           AND NOT EXISTS (SELECT 1 FROM troupe_jobs o
                           WHERE o.key = s.key AND o.tenant_id IS DISTINCT FROM $1)
         RETURNING 1`,
        [ctx.tenantId],
      );
      return { actorStates: gone.length };
    });
    await drain(
      ctx,
      "deadLetters",
      `WITH d AS (DELETE FROM troupe_dead_letters WHERE id IN (
         SELECT id FROM troupe_dead_letters WHERE tenant_id = $1 LIMIT $2) RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
    );
    await drain(
      ctx,
      "jobs",
      `WITH j AS (SELECT id FROM troupe_jobs WHERE tenant_id = $1 ORDER BY id LIMIT $2),
         o AS (DELETE FROM troupe_outbox WHERE job_id IN (SELECT id FROM j)),
         d AS (DELETE FROM troupe_jobs WHERE id IN (SELECT id FROM j) RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
    );
  },
};

/** Its audit log (the deletion's own entry is under no tenant and stays). */
export const auditPart: TenantDataPart = {
  name: "audit",
  async deleteTenantData(ctx) {
    await drain(
      ctx,
      "entries",
      `WITH d AS (DELETE FROM troupe_audit_log WHERE id IN (
         SELECT id FROM troupe_audit_log WHERE tenant_id = $1 LIMIT $2) RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
    );
  },
};

/** The tenant's row, last. */
export const tenantRowPart: TenantDataPart = {
  name: "tenant",
  async deleteTenantData(ctx) {
    await ctx.step(async (tx) => {
      const gone = await tx.query("DELETE FROM troupe_tenants WHERE id = $1 RETURNING 1", [
        ctx.tenantId,
      ]);
      return { tenants: gone.length };
    });
  },
};
