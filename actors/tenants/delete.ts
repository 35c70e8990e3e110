/**
 * `tenant.delete`: removes a tenant with all its rows, blobs, vectors and jobs, and reports
 * what it removed.
 *
 * The parts run in order: its keys (nothing new arrives), its open jobs (stopped), the
 * blobs it holds (noted), each workload's part (registered in `main.ts`: one line each), its
 * jobs and actor state, its audit log, its row; then the blobs it held that nobody else holds
 * are removed. Shared blobs stay.
 *
 * Resumable: the deletion's record is one audit entry under no tenant (action `tenant.delete`,
 * target the tenant), and every step adds its counts to it in the step's own transaction. A
 * crash anywhere, redelivered, runs the parts again: each removes what is left, and the
 * record's counts are what was removed, once. A deletion run again after it finished
 * returns its record.
 */
import { z } from "zod";
import {
  defineActor,
  InputError,
  type SqlDatabase,
  type SqlExecutor,
  uuidv7,
} from "@troupe/runtime";
import type { BlobStore } from "../../db/blobs/port.ts";
import { collectUnheld } from "../../db/blobs/refs.ts";
import type { Counts, TenantDataPart } from "./part.ts";
import {
  accessPart,
  auditPart,
  type CancelJob,
  runtimePart,
  stopJobsPart,
  tenantRowPart,
} from "./runtime_data.ts";

export type { Counts, TenantDataPart } from "./part.ts";

export interface TenantDeletionOptions {
  db: SqlDatabase;
  /** Where uploaded files are; the tenant's unshared ones are removed at the end. */
  blobs?: BlobStore;
  /** The workloads' parts, in the order they run (see `TenantDataPart`). */
  parts: readonly TenantDataPart[];
  /** Cancels a job: the runtime's `cancel`. */
  cancel: CancelJob;
  /** Called once the keys are gone: an instance's cache of authenticated keys is cleared. */
  onKeysRemoved?: () => void;
  /**
   * A blob an upload stored this recently is kept (another tenant's upload of the same bytes
   * may be about to hold it) and left to the daily cleanup. @default 60000
   */
  blobGraceMs?: number;
  /** How long open jobs are waited for, per attempt. @default 30000 */
  jobsWaitMs?: number;
}

/** What the job returns: counts per part and kind. */
export interface TenantDeletion {
  tenantId: string;
  tenantName: string;
  status: "running" | "done";
  startedAt: string;
  finishedAt?: string;
  removed: Record<string, Counts>;
  /** Blobs the tenant held (removed at the end unless shared). */
  blobs: string[];
}

const ACTION = "tenant.delete";

/** The deletion's record (creating it for a tenant that exists), or null: no such tenant. */
async function openRecord(
  db: SqlDatabase,
  tenantId: string,
): Promise<{ id: string; details: TenantDeletion } | null> {
  return await db.transaction(async (tx) => {
    const found = await readRecord(tx, tenantId);
    if (found) return found;
    const [tenant] = await tx.query<{ name: string }>(
      "SELECT name FROM troupe_tenants WHERE id = $1",
      [tenantId],
    );
    if (!tenant) return null;
    const details: TenantDeletion = {
      tenantId,
      tenantName: tenant.name,
      status: "running",
      startedAt: new Date().toISOString(),
      removed: {},
      blobs: [],
    };
    const id = uuidv7();
    await tx.query(
      `INSERT INTO troupe_audit_log (id, tenant_id, action, target_type, target_id, details)
       VALUES ($1, NULL, $2, 'tenant', $3, $4::jsonb)`,
      [id, ACTION, tenantId, JSON.stringify(details)],
    );
    return { id, details };
  });
}

async function readRecord(tx: SqlExecutor, tenantId: string, lock = false) {
  const [row] = await tx.query<{ id: string; details: TenantDeletion }>(
    `SELECT id, details FROM troupe_audit_log
     WHERE action = $1 AND target_id = $2 AND tenant_id IS NULL ORDER BY id LIMIT 1
     ${lock ? "FOR UPDATE" : ""}`,
    [ACTION, tenantId],
  );
  return row ? { id: row.id, details: row.details } : null;
}

/** Applies `change` to the record in `tx` (locked: steps of one deletion are in order). */
async function updateRecord(
  tx: SqlExecutor,
  tenantId: string,
  change: (d: TenantDeletion) => void,
): Promise<TenantDeletion> {
  const record = (await readRecord(tx, tenantId, true))!;
  change(record.details);
  await tx.query("UPDATE troupe_audit_log SET details = $2::jsonb WHERE id = $1", [
    record.id,
    JSON.stringify(record.details),
  ]);
  return record.details;
}

function add(into: Record<string, Counts>, part: string, counts: Counts): void {
  const tally = into[part] ??= {};
  for (const [kind, n] of Object.entries(counts)) tally[kind] = (tally[kind] ?? 0) + n;
}

/** The `tenant.delete` actor. */
export function tenantDeletionActor(o: TenantDeletionOptions) {
  const { db } = o;
  return defineActor({
    name: "tenant.delete",
    exposed: false,
    input: z.object({ tenantId: z.string().min(1).max(100) }),
    key: (i) => `tenant-delete:${i.tenantId}`,
    retries: 8,
    timeoutMs: 30 * 60_000,
    concurrency: 2,
    handler: async ({ tenantId }, ctx): Promise<TenantDeletion> => {
      const record = await openRecord(db, tenantId);
      if (!record) throw new InputError("TENANT_NOT_FOUND", `no tenant ${tenantId}`);
      if (record.details.status === "done") return record.details;
      const run = (part: TenantDataPart) =>
        part.deleteTenantData({
          tenantId,
          db,
          signal: ctx.signal,
          step: (fn) =>
            db.transaction(async (tx) => {
              const counts = await fn(tx);
              if (Object.keys(counts).length) {
                await updateRecord(tx, tenantId, (d) => add(d.removed, part.name, counts));
              }
              return counts;
            }),
        });
      const noteBlobs: TenantDataPart = {
        name: "blobs",
        async deleteTenantData() {
          await db.transaction(async (tx) => {
            const held = await tx.query<{ sha256: string }>(
              "SELECT DISTINCT sha256 FROM troupe_blob_refs WHERE tenant_id = $1",
              [tenantId],
            );
            await updateRecord(tx, tenantId, (d) => {
              d.blobs = [...new Set([...d.blobs, ...held.map((r) => r.sha256)])].sort();
            });
          });
        },
      };
      const parts = [
        accessPart(o.onKeysRemoved),
        stopJobsPart(o.cancel, { waitMs: o.jobsWaitMs ?? 30_000 }),
        noteBlobs,
        ...o.parts,
        runtimePart,
        auditPart,
        tenantRowPart,
      ];
      for (const [i, part] of parts.entries()) {
        ctx.progress(Math.round((i / (parts.length + 1)) * 100), `removing ${part.name}`);
        await run(part);
        ctx.signal.throwIfAborted();
      }
      ctx.progress(Math.round((parts.length / (parts.length + 1)) * 100), "removing blobs");
      const blobs = (await readRecord(db, tenantId))!.details.blobs;
      const removed = o.blobs
        ? await collectUnheld(db, o.blobs, blobs, { graceMs: o.blobGraceMs ?? 60_000 })
        : 0;
      return await db.transaction((tx) =>
        updateRecord(tx, tenantId, (d) => {
          add(d.removed, "blobs", { held: blobs.length, removed });
          d.status = "done";
          d.finishedAt = new Date().toISOString();
        })
      );
    },
  });
}
