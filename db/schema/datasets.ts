/**
 * Datasets: an uploaded CSV/TSV/JSON/NDJSON file (a blob), its chunks and its merged profile.
 *
 * The rows of a dataset live in a table of its own, `troupe_ds_<id>`, created by the pipeline
 * (not by migrations): columns `c0..cN` (user column names never reach SQL; `columns` maps
 * them), first as text while chunks load, then converted once to the merged types (bigint,
 * double precision, boolean, date, timestamptz, text). `_row` is the row's deterministic id
 * (chunk index and position in the chunk), so a redelivered chunk adds nothing twice.
 */
import { index, integer, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { bigint } from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const datasets = pgTable(
  "troupe_datasets",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    name: text("name").notNull(),
    /** uploaded | splitting | processing | merging | ready | failed */
    status: text("status").notNull(),
    format: text("format").notNull(),
    /** Parsing and cleaning options as given (validated). */
    options: jsonb("options").notNull(),
    blobSha256: text("blob_sha256").notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
    chunkCount: integer("chunk_count"),
    chunksDone: integer("chunks_done").notNull().default(0),
    rowCount: bigint("row_count", { mode: "number" }),
    skippedRows: bigint("skipped_rows", { mode: "number" }).notNull().default(0),
    /** [{ name, key (c0..), type, profile }] once ready. */
    columns: jsonb("columns"),
    /** The first row errors, with line numbers. */
    rowErrors: jsonb("row_errors"),
    error: jsonb("error"),
    jobId: text("job_id"),
    /** Bumped on every change; part of query cache keys. */
    version: integer("version").notNull().default(1),
    createdAt: tz("created_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
  },
  (t) => [index("troupe_datasets_tenant_idx").on(t.tenantId, t.id)],
);

export const datasetChunks = pgTable(
  "troupe_dataset_chunks",
  {
    datasetId: text("dataset_id").notNull(),
    idx: integer("idx").notNull(),
    byteStart: bigint("byte_start", { mode: "number" }).notNull(),
    byteEnd: bigint("byte_end", { mode: "number" }).notNull(),
    firstLine: integer("first_line").notNull(),
    /** pending | done */
    status: text("status").notNull().default("pending"),
    rowCount: integer("row_count"),
    skippedRows: integer("skipped_rows"),
    /** The chunk's mergeable profile (serialized sketches); stored uncompressed (migration 0002). */
    profile: jsonb("profile"),
    rowErrors: jsonb("row_errors"),
    updatedAt: tz("updated_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.datasetId, t.idx] })],
);
