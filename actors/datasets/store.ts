/**
 * SQL over `troupe_datasets` and `troupe_dataset_chunks`, and the per-dataset row tables
 * (`troupe_ds_<id>`). Every read takes the tenant: another tenant's dataset is not found.
 */
import { NotFoundError, type SqlExecutor } from "@troupe/runtime";
import { releaseBlobs } from "../../db/blobs/refs.ts";
import { dropDocument } from "../documents/stored.ts";
import type { DatasetOptions } from "./options.ts";

export type DatasetStatus =
  | "uploaded"
  | "splitting"
  | "processing"
  | "merging"
  | "ready"
  | "failed"
  /** Its upload's pipeline was cancelled. */
  | "cancelled";

export interface ColumnInfo {
  /** The name shown to users (after renames). */
  name: string;
  /** The SQL column holding it: `c0`, `c1`, ... */
  key: string;
  type: string;
  profile?: unknown;
}

export interface DatasetView {
  id: string;
  name: string;
  status: DatasetStatus;
  format: string;
  sizeBytes: number;
  sha256: string;
  rowCount: number | null;
  skippedRows: number;
  chunks: { total: number | null; done: number };
  columns: ColumnInfo[];
  rowErrors: unknown[];
  /** What the file's reading found worth a look (e.g. a quoted field over many lines). */
  warnings: unknown[];
  /** The encoding the file is read in (`encoding=auto` decided), once the split has begun. */
  encoding: string | null;
  error: unknown;
  jobId: string | null;
  version: number;
  options: DatasetOptions;
  createdAt: string;
  updatedAt: string;
}

type Row = Record<string, unknown>;

/** The table holding a dataset's rows (its id is a uuid: hex and dashes only). */
export function rowsTable(datasetId: string): string {
  if (!/^[0-9a-f-]{36}$/.test(datasetId)) throw new NotFoundError("dataset", datasetId);
  return `troupe_ds_${datasetId.replaceAll("-", "")}`;
}

const COLUMNS = `id, name, status, format, size_bytes::float8 AS size_bytes, blob_sha256,
  row_count::float8 AS row_count, skipped_rows::float8 AS skipped_rows, chunk_count, chunks_done,
  columns, row_errors, error, job_id, version, options, created_at, updated_at`;

export async function insertDataset(tx: SqlExecutor, d: NewDataset): Promise<void> {
  await insertDatasets(tx, [d]);
}

/** What a new dataset row holds (status `uploaded`). */
export interface NewDataset {
  id: string;
  tenantId: string;
  name: string;
  format: string;
  options: DatasetOptions;
  sha256: string;
  size: number;
  jobId: string;
}

/** Inserts new datasets' rows in one statement. */
export async function insertDatasets(tx: SqlExecutor, ds: readonly NewDataset[]): Promise<void> {
  if (ds.length === 0) return;
  await tx.query(
    `INSERT INTO troupe_datasets
       (id, tenant_id, name, status, format, options, blob_sha256, size_bytes, job_id)
     SELECT x.id, x.tenant_id, x.name, 'uploaded', x.format, x.options, x.blob_sha256,
       x.size_bytes, x.job_id
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, tenant_id text, name text, format text,
       options jsonb, blob_sha256 text, size_bytes bigint, job_id text)`,
    [
      JSON.stringify(ds.map((d) => ({
        id: d.id,
        tenant_id: d.tenantId,
        name: d.name,
        format: d.format,
        options: d.options,
        blob_sha256: d.sha256,
        size_bytes: d.size,
        job_id: d.jobId,
      }))),
    ],
  );
}

export async function getDataset(
  db: SqlExecutor,
  id: string,
  tenantId: string | null,
): Promise<DatasetView> {
  const rows = await db.query<Row>(
    `SELECT ${COLUMNS} FROM troupe_datasets
     WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)`,
    [id, tenantId],
  );
  if (!rows[0]) throw new NotFoundError("dataset", id);
  return view(rows[0]);
}

export async function listDatasets(
  db: SqlExecutor,
  tenantId: string,
  { limit, cursor }: { limit: number; cursor?: string },
): Promise<{ items: DatasetView[]; nextCursor: string | null }> {
  const rows = await db.query<Row>(
    `SELECT ${COLUMNS} FROM troupe_datasets
     WHERE tenant_id = $1 AND ($2::text IS NULL OR id < $2)
     ORDER BY id DESC LIMIT $3`,
    [tenantId, cursor ?? null, limit + 1],
  );
  const items = rows.slice(0, limit).map(view);
  return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
}

/** The dataset's pipeline job, `undefined` when the tenant has no such dataset. */
export async function datasetJobId(
  db: SqlExecutor,
  id: string,
  tenantId: string,
): Promise<{ jobId: string | null } | undefined> {
  const [owned] = await db.query<{ job_id: string | null }>(
    "SELECT job_id FROM troupe_datasets WHERE id = $1 AND tenant_id = $2",
    [id, tenantId],
  );
  return owned ? { jobId: owned.job_id } : undefined;
}

/**
 * Up to `limit` of the dataset's rows after row number `after` (-1: from the first), in order,
 * each with its `_row` and the columns `keys`.
 */
export async function rowsAfter(
  db: SqlExecutor,
  datasetId: string,
  keys: string[],
  after: number,
  limit = 2000,
): Promise<Row[]> {
  const select = keys.map((key) => `, "${key}"`).join("");
  return await db.query<Row>(
    `SELECT _row${select} FROM ${rowsTable(datasetId)} WHERE _row > $1 ORDER BY _row LIMIT $2`,
    [after, limit],
  );
}

/**
 * Deletes the dataset, its chunks, its rows table and its report, and releases its file (in `tx`, so the
 * file stays held until the delete commits; it is collected later if nothing else holds it).
 */
export async function deleteDataset(tx: SqlExecutor, id: string, tenantId: string): Promise<void> {
  const rows = await tx.query(
    "DELETE FROM troupe_datasets WHERE id = $1 AND tenant_id = $2 RETURNING id",
    [id, tenantId],
  );
  if (!rows[0]) throw new NotFoundError("dataset", id);
  await tx.query("DELETE FROM troupe_dataset_chunks WHERE dataset_id = $1", [id]);
  await tx.query(`DROP TABLE IF EXISTS ${rowsTable(id)}`);
  await releaseBlobs(tx, { kind: "dataset", id });
  await dropDocument(tx, tenantId, "dataset_report", id);
}

const iso = (v: unknown) => (v instanceof Date ? v : new Date(String(v))).toISOString();

function view(r: Row): DatasetView {
  return {
    id: String(r.id),
    name: String(r.name),
    status: r.status as DatasetStatus,
    format: String(r.format),
    sizeBytes: Number(r.size_bytes),
    sha256: String(r.blob_sha256),
    rowCount: r.row_count === null ? null : Number(r.row_count),
    skippedRows: Number(r.skipped_rows),
    chunks: {
      total: r.chunk_count === null ? null : Number(r.chunk_count),
      done: Number(r.chunks_done),
    },
    columns: (r.columns as ColumnInfo[] | null) ?? [],
    rowErrors: (r.row_errors as unknown[] | null) ?? [],
    warnings: ((r.options as { _warnings?: unknown[] } | null)?._warnings) ?? [],
    encoding: ((r.options as { _encoding?: string } | null)?._encoding) ?? null,
    error: r.error ?? null,
    jobId: (r.job_id as string | null) ?? null,
    version: Number(r.version),
    options: r.options as DatasetOptions,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}
