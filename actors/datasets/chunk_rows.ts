/** Writing a chunk's rows into its dataset's rows table, and widening its columns. */
import { type CopyData, InputError, type SqlDatabase, type SqlExecutor } from "@troupe/runtime";
import { cellText, ROW_ID_BASE } from "./chunk_work.ts";
import type { SplitWarning } from "./ingest/mod.ts";
import { type ColumnType, joinTypes } from "./ingest/infer.ts";
import { sqlType } from "./query.ts";

/** Rows inserted per statement. */
const INSERT_BATCH = 2000;

/** Warnings kept on a dataset. */
export const MAX_WARNINGS = 100;

/** Appends a split step's warnings to the dataset's (kept in its options, as `_warnings`). */
export async function addWarnings(
  tx: SqlExecutor,
  datasetId: string,
  warnings: readonly SplitWarning[],
): Promise<void> {
  if (!warnings.length) return;
  await tx.query(
    `UPDATE troupe_datasets SET options = jsonb_set(options, '{_warnings}',
       coalesce(options->'_warnings', '[]'::jsonb) || $2::jsonb)
     WHERE id = $1`,
    [datasetId, JSON.stringify(warnings)],
  );
}

export async function insertChunkRows(
  tx: SqlExecutor,
  datasetId: string,
  rows: { idx: number; start: number; end: number; first_line: number }[],
): Promise<void> {
  if (!rows.length) return;
  await tx.query(
    `INSERT INTO troupe_dataset_chunks (dataset_id, idx, byte_start, byte_end, first_line)
     SELECT $1, x.idx, x.start, x."end", x.first_line
     FROM jsonb_to_recordset($2::jsonb) AS x(idx int, start bigint, "end" bigint, first_line int)
     ON CONFLICT DO NOTHING`,
    [datasetId, JSON.stringify(rows)],
  );
}

/**
 * Adds text columns `keys` (those it lacks) to a rows table, refusing with `TOO_MANY_COLUMNS`
 * when the table would then hold more than `max` columns of data. Under an exclusive lock, so
 * chunks adding columns at once count each other's.
 */
export async function addColumns(
  db: SqlDatabase,
  table: string,
  keys: readonly string[],
  max: number,
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    const stored = await storedTypes(tx, table);
    const added = [...new Set(keys)].filter((key) => !stored.has(key));
    if (!added.length) return;
    const data = [...stored.keys()].filter((name) => name.startsWith("c_")).length;
    if (data + added.length > max) {
      throw new InputError(
        "TOO_MANY_COLUMNS",
        `the file has more than ${max} columns (its records' keys)`,
        { details: { maxColumns: max } },
      );
    }
    await tx.query(
      `ALTER TABLE ${table} ${added.map((key) => `ADD COLUMN "${key}" text`).join(", ")}`,
    );
  });
}

/** The column types of a stored rows table, as dataset types (`text` reads as `string`). */
const STORED_TYPES: Record<string, ColumnType> = {
  "bigint": "integer",
  "double precision": "float",
  "boolean": "boolean",
  "date": "date",
  "timestamp with time zone": "datetime",
};

export async function storedTypes(
  db: SqlExecutor,
  table: string,
): Promise<Map<string, ColumnType>> {
  const rows = await db.query<{ name: string; type: string }>(
    `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
     WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [table],
  );
  return new Map(rows.map((r) => [r.name, STORED_TYPES[r.type] ?? "string"]));
}

/**
 * Makes each column take a chunk's values before they are copied in: a column whose stored
 * type is narrower than the chunk's (integer then float; anything then text) is altered to
 * the join of the two. Under an exclusive lock, re-read, so concurrent chunks only ever
 * widen. Rare: most files keep their types from the first chunk on.
 */
export async function widenColumns(
  db: SqlDatabase,
  table: string,
  keys: readonly string[],
  types: readonly ColumnType[],
): Promise<void> {
  const needed = (stored: Map<string, ColumnType>) =>
    keys.flatMap((key, i) => {
      const cur = stored.get(key) ?? "string";
      const to = joinTypes(cur, types[i] ?? "string");
      return sqlType(to) === sqlType(cur) ? [] : [{ key, to: sqlType(to) }];
    });
  if (!needed(await storedTypes(db, table)).length) return;
  await db.transaction(async (tx) => {
    await tx.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    const changes = needed(await storedTypes(tx, table));
    if (!changes.length) return;
    await tx.query("SET LOCAL timezone = 'UTC'");
    await alterTypes(tx, table, changes);
  });
}

/** Converts columns to SQL types in one table rewrite (nothing to do: no statement). */
export async function alterTypes(
  tx: SqlExecutor,
  table: string,
  changes: readonly { key: string; to: string }[],
): Promise<void> {
  if (!changes.length) return;
  await tx.query(
    `ALTER TABLE ${table} ${
      changes.map((c) => `ALTER COLUMN "${c.key}" TYPE ${c.to} USING "${c.key}"::${c.to}`)
        .join(", ")
    }`,
  );
}

/**
 * Stores a chunk's rows with COPY: in one transaction, the rows of an earlier attempt of this
 * chunk (its id range) are deleted and the chunk's rows copied in, so a redelivered chunk
 * leaves exactly one copy. `text` is COPY text, as `processChunk` writes it (no segment or an
 * empty text: nothing to copy).
 */
export async function replaceChunkRows(
  db: SqlDatabase,
  table: string,
  idx: number,
  keys: readonly string[],
  text: CopyData,
): Promise<void> {
  const base = idx * ROW_ID_BASE;
  await db.transaction(async (tx) => {
    // Naive date-times are read as UTC, whatever the server's zone (as at the merge).
    await tx.query("SET LOCAL timezone = 'UTC'");
    await tx.query(`DELETE FROM ${table} WHERE _row >= $1 AND _row < $2`, [
      base,
      base + ROW_ID_BASE,
    ]);
    if (!text.length) return;
    if (!tx.copyIn) throw new Error("the database offers COPY outside transactions only");
    await tx.copyIn(table, ["_row", ...keys.map((k) => `"${k}"`)], text);
  });
}

/**
 * Inserts a chunk's rows; ids are deterministic (`idx × 2^32 + position`) so a second insert
 * of the same chunk adds nothing. With duplicate-row removal, a row whose hash exists (from
 * another chunk) is skipped. Returns the rows of this chunk that are in the table (inserted
 * now, or by an earlier attempt of the same chunk), for the profile.
 */
export async function insertRows(
  db: SqlExecutor,
  table: string,
  idx: number,
  keys: readonly string[],
  rows: readonly (readonly unknown[])[],
  hashes: readonly string[] | undefined,
  signal: AbortSignal,
): Promise<{ rows: (readonly unknown[])[]; duplicates: number }> {
  const kept: (readonly unknown[])[] = [];
  let duplicates = 0;
  const cols = ["_row", ...(hashes ? ["_hash"] : []), ...keys.map((k) => `"${k}"`)];
  const casts = cols.map((_, i) => `$${i + 1}::${i === 0 ? "bigint" : "text"}[]`);
  for (let start = 0; start < rows.length; start += INSERT_BATCH) {
    signal.throwIfAborted();
    const batch = rows.slice(start, start + INSERT_BATCH);
    const ids = batch.map((_, i) => idx * ROW_ID_BASE + start + i);
    const params: unknown[] = [ids];
    if (hashes) params.push(hashes.slice(start, start + INSERT_BATCH));
    for (let k = 0; k < keys.length; k++) params.push(batch.map((r) => cellText(r[k])));
    const inserted = await db.query<{ _row: string | number }>(
      `INSERT INTO ${table} (${cols.join(", ")}) SELECT * FROM unnest(${casts.join(", ")})
       ON CONFLICT DO NOTHING RETURNING _row`,
      params,
    );
    if (inserted.length === batch.length) {
      kept.push(...batch);
      continue;
    }
    const mine = new Set(inserted.map((r) => Number(r._row)));
    const missing = ids.filter((id) => !mine.has(id));
    // Rows an earlier attempt of this chunk stored are this chunk's too.
    const earlier = await db.query<{ _row: string | number }>(
      `SELECT _row FROM ${table} WHERE _row = ANY($1::bigint[])`,
      [missing],
    );
    for (const r of earlier) mine.add(Number(r._row));
    batch.forEach((row, i) => mine.has(ids[i]!) ? kept.push(row) : duplicates++);
  }
  return { rows: kept, duplicates };
}
