/**
 * The SQL of groups (see `../groups.ts`): one statement a function. Every writer of a group row
 * locks it (`FOR UPDATE`, in id order) after the job rows it ends: the same order everywhere.
 */
import type { SqlExecutor } from "../ports.ts";
import type { NewJob } from "./insert_jobs.ts";
import type { Tables } from "./tables.ts";

/** A group row to insert. */
export interface GroupRow {
  id: string;
  tenantId: string | null;
  parentId: string | null;
  /** The part job ids, in the order given. */
  parts: string[];
  /** The continuation's row; its input gets `group` when it is sent. */
  continuation: NewJob;
}

/** An open group, locked. */
export interface OpenGroup {
  id: string;
  parts: string[];
  remaining: number;
  continuation: NewJob;
}

/** Inserts groups (a group id that exists already is skipped: a re-run makes the same one). */
export async function insertGroups(
  tx: SqlExecutor,
  t: Tables,
  groups: readonly GroupRow[],
): Promise<void> {
  if (groups.length === 0) return;
  await tx.query(
    `INSERT INTO ${t.groups} (id, tenant_id, parent_id, parts, remaining, continuation)
     SELECT x.id, x.tenant_id, x.parent_id, x.parts, jsonb_array_length(x.parts), x.continuation
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, tenant_id text, parent_id text,
       parts jsonb, continuation jsonb)
     ON CONFLICT (id) DO NOTHING`,
    [JSON.stringify(groups.map((g) => ({
      id: g.id,
      tenant_id: g.tenantId,
      parent_id: g.parentId,
      parts: g.parts,
      continuation: g.continuation,
    })))],
  );
}

/** Locks the groups among `ids` that are still open, in id order. */
export async function lockOpenGroups(
  tx: SqlExecutor,
  t: Tables,
  ids: Iterable<string>,
): Promise<OpenGroup[]> {
  const wanted = [...new Set(ids)].sort();
  if (wanted.length === 0) return [];
  return await tx.query<OpenGroup>(
    `SELECT id, parts, remaining, continuation FROM ${t.groups}
     WHERE id = ANY($1::text[]) AND status = 'open' ORDER BY id FOR UPDATE`,
    [wanted],
  );
}

/** The status, result and error of each part (as written in this transaction). */
export async function readParts(
  tx: SqlExecutor,
  t: Tables,
  ids: readonly string[],
): Promise<Map<string, { status: string; result: unknown; error: unknown }>> {
  const rows = await tx.query<{ id: string; status: string; result: unknown; error: unknown }>(
    `SELECT id, status, result, error FROM ${t.jobs} WHERE id = ANY($1::text[])`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/** Writes the new counters of open groups, and the end of those that are over. */
export async function updateGroups(
  tx: SqlExecutor,
  t: Tables,
  rows: readonly {
    id: string;
    remaining: number;
    status: "open" | "succeeded" | "failed";
    continuation_id: string | null;
  }[],
): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `UPDATE ${t.groups} g SET remaining = x.remaining, status = x.status,
       continuation_id = x.continuation_id,
       finished_at = CASE WHEN x.status = 'open' THEN NULL ELSE now() END
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, remaining int, status text,
       continuation_id text)
     WHERE g.id = x.id`,
    [JSON.stringify(rows)],
  );
}
