/**
 * `system.cleanup`: deletes finished jobs, ledger rows and dead letters older than the
 * retention setting, audit-log entries older than the audit retention (90 days), expired
 * webhook signature ids and cached report names (`troupe_usage_reports`), and parts of blob
 * uploads that never finished, and collects the
 * uploaded files no dataset or course of any tenant holds any more (after a grace period, see
 * db/blobs/refs.ts). Scheduled daily; deletes in batches so no lock is held for long.
 * Deleting is idempotent, so it writes through the database port directly.
 */
import { z } from "zod";
import { defineActor, type SqlDatabase, type SqlExecutor } from "@troupe/runtime";
import type { BlobStore } from "../../db/blobs/port.ts";
import { sweepOrphans } from "../../db/blobs/postgres.ts";
import { collectBlobs } from "../../db/blobs/refs.ts";
import { purgeExpiredReports } from "../usage/reports.ts";

const BATCH = 5000;
/** Longer than any upload takes between storing its files and committing the dataset or course. */
export const DEFAULT_BLOB_GRACE_MS = 6 * 3_600_000;

export interface CleanupOptions {
  db: SqlExecutor;
  /** Rows older than this many days go. */
  retentionDays: number;
  /** Audit-log entries older than this many days go. @default 90 */
  auditRetentionDays?: number;
  /** @default "17 3 * * *" (daily, 03:17 UTC) */
  schedule?: string;
  /** Where uploaded files are, to collect those nobody holds (none: files are not collected). */
  blobs?: {
    store: BlobStore;
    db: SqlDatabase;
    /** A file stored or released more recently than this is kept. @default 6 hours */
    graceMs?: number;
  };
}

export function cleanupActor(
  { db, retentionDays, auditRetentionDays = 90, schedule = "17 3 * * *", blobs }: CleanupOptions,
) {
  return defineActor({
    name: "system.cleanup",
    exposed: false,
    input: z.object({ retentionDays: z.number().int().min(0).max(3650).optional() }),
    key: () => "system:cleanup",
    schedule,
    scheduleInput: {},
    retries: 2,
    timeoutMs: 15 * 60_000,
    concurrency: 1,
    handler: async (input, ctx) => {
      const days = input.retentionDays ?? retentionDays;
      const cutoff = new Date(Date.now() - days * 86_400_000).toISOString();
      const auditCutoff = new Date(Date.now() - auditRetentionDays * 86_400_000).toISOString();
      const deleted = {
        jobs: 0,
        ledger: 0,
        deadLetters: 0,
        groups: 0,
        audit: 0,
        nonces: 0,
        reports: 0,
        blobParts: 0,
        blobs: 0,
      };
      const drain = async (sql: string, before = cutoff) => {
        let total = 0;
        while (!ctx.signal.aborted) {
          const rows = await db.query<{ n: number }>(sql, [before, BATCH]);
          const n = rows[0]?.n ?? 0;
          total += n;
          if (n < BATCH) break;
        }
        return total;
      };
      deleted.jobs = await drain(
        `WITH d AS (DELETE FROM troupe_jobs WHERE id IN (
           SELECT id FROM troupe_jobs WHERE finished_at < $1::timestamptz
             AND status IN ('succeeded', 'failed', 'cancelled') LIMIT $2) RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
      );
      ctx.progress(40, "jobs deleted");
      deleted.ledger = await drain(
        `WITH d AS (DELETE FROM troupe_processed_messages WHERE message_id IN (
           SELECT message_id FROM troupe_processed_messages WHERE processed_at < $1::timestamptz
           LIMIT $2) RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
      );
      ctx.progress(70, "ledger deleted");
      deleted.deadLetters = await drain(
        `WITH d AS (DELETE FROM troupe_dead_letters WHERE id IN (
           SELECT id FROM troupe_dead_letters WHERE created_at < $1::timestamptz LIMIT $2)
           RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
      );
      // A group is over once its continuation is sent (or its parts are gone with old jobs).
      deleted.groups = await drain(
        `WITH d AS (DELETE FROM troupe_groups WHERE id IN (
           SELECT id FROM troupe_groups WHERE finished_at < $1::timestamptz LIMIT $2)
           RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
      );
      ctx.progress(90, "dead letters and groups deleted");
      deleted.audit = await drain(
        `WITH d AS (DELETE FROM troupe_audit_log WHERE id IN (
           SELECT id FROM troupe_audit_log WHERE created_at < $1::timestamptz LIMIT $2)
           RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
        auditCutoff,
      );
      deleted.nonces = await drain(
        `WITH d AS (DELETE FROM troupe_webhook_nonces WHERE jti IN (
           SELECT jti FROM troupe_webhook_nonces WHERE expires_at < $1::timestamptz LIMIT $2)
           RETURNING 1)
         SELECT count(*)::int AS n FROM d`,
        new Date().toISOString(),
      );
      const now = new Date();
      while (!ctx.signal.aborted) {
        const n = await purgeExpiredReports(db, now, BATCH);
        deleted.reports += n;
        if (n < BATCH) break;
      }
      deleted.blobParts = await sweepOrphans(db);
      if (blobs) {
        const graceMs = blobs.graceMs ?? DEFAULT_BLOB_GRACE_MS;
        while (!ctx.signal.aborted) {
          const { examined, removed } = await collectBlobs(blobs.db, blobs.store, {
            graceMs,
            limit: BATCH,
            signal: ctx.signal,
          });
          deleted.blobs += removed;
          if (examined < BATCH) break;
        }
      }
      ctx.log.info("cleanup done", { ...deleted, retentionDays: days });
      return { ...deleted, cutoff };
    },
  });
}
