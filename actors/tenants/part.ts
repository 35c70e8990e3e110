/**
 * The port of tenant deletion: each workload removes its own part of a tenant's data
 * (`TenantDataPart`), and `tenant.delete` (./delete.ts) runs every part in order, tallying
 * what each removed.
 */
import type { SqlDatabase, SqlExecutor } from "@troupe/runtime";

/** How many of each kind of thing a part removed (`{ datasets: 2, rows: 1200 }`). */
export type Counts = Record<string, number>;

/** What a part is given to remove a tenant's data. */
export interface TenantDeletionContext {
  readonly tenantId: string;
  readonly db: SqlDatabase;
  /** Aborted when the job times out or is cancelled: stop between steps. */
  readonly signal: AbortSignal;
  /**
   * Runs `fn` in a transaction that also adds the counts it returns to this part's tally:
   * both commit or neither, so a crash between steps loses no count and counts nothing twice.
   * Work outside the database (a vector store) goes before the step that removes its rows.
   */
  step(fn: (tx: SqlExecutor) => Promise<Counts>): Promise<Counts>;
}

/**
 * One workload's share of a tenant's data.
 *
 * Invariants: `deleteTenantData` removes everything of the tenant this part owns and nothing
 * of another tenant; it is idempotent (run again after a crash at any point, it removes what
 * is left and counts only that); it releases blobs through `releaseBlobs` (db/blobs/refs.ts)
 * and never removes one itself, since other tenants may hold the same bytes.
 */
export interface TenantDataPart {
  /** Its name: the key of its counts in the deletion's result. */
  readonly name: string;
  deleteTenantData(ctx: TenantDeletionContext): Promise<void>;
}

/** Runs `each` over the ids `page` returns until it returns none (each call removes them). */
export async function drainIds(
  ctx: TenantDeletionContext,
  page: () => Promise<string[]>,
  each: (id: string) => Promise<void>,
): Promise<void> {
  while (!ctx.signal.aborted) {
    const ids = await page();
    if (!ids.length) return;
    for (const id of ids) {
      if (ctx.signal.aborted) return;
      await each(id);
    }
  }
}
