/**
 * Rows a handler declares with `ctx.insert(table, row)`: written with its message's commit,
 * like an `effect()`, but the rows of every message committed together go in one statement a
 * table, set of columns and conflict rule, where each `effect()` is a statement (a round trip)
 * of its own.
 *
 * Invariants:
 * - A row is checked and turned into JSON when it is declared: a bad table or column name, or a
 *   value JSON cannot carry, throws there (in the handler), never at the commit.
 * - Names are quoted as given (`[A-Za-z_][A-Za-z0-9_$]*`, `schema.table` or `table`): nothing
 *   else reaches the statement's text.
 * - A column left out of a row (or `undefined`) takes its default: rows with different columns
 *   go in different statements.
 * - The values are converted to the columns' types by PostgreSQL (`json_populate_recordset`
 *   over the table's row type), as the text input of each type.
 */
import type { SqlExecutor } from "../ports.ts";

/** Options of `ActorContext.insert`. */
export interface InsertOptions {
  /**
   * `"ignore"`: a row whose unique key exists already is skipped (`ON CONFLICT DO NOTHING`).
   * Without it, such a row fails its message's attempt (a unique violation).
   */
  onConflict?: "ignore";
}

/** A declared row, as JSON, with the statement it goes in. */
export interface DeclaredRow {
  /** The statement (the rows of one statement share it: table, columns, conflict rule). */
  readonly statement: string;
  /** The row as a JSON object. */
  readonly json: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_$]*$/;

/** Checks `row` and makes it a {@link DeclaredRow} of `table`; throws a `TypeError` if bad. */
export function declareRow(
  table: string,
  row: Readonly<Record<string, unknown>>,
  options: InsertOptions = {},
): DeclaredRow {
  if (typeof table !== "string") throw new TypeError("insert(): the table must be a string");
  const parts = table.split(".");
  if (parts.length > 2 || !parts.every((p) => NAME.test(p))) {
    throw new TypeError(
      `insert(): "${table}" is not a table name ([schema.]table: letters, digits, _, $)`,
    );
  }
  if (row === null || typeof row !== "object" || Array.isArray(row)) {
    throw new TypeError("insert(): the row must be an object of column names to values");
  }
  if (options.onConflict !== undefined && options.onConflict !== "ignore") {
    throw new TypeError(`insert(): onConflict must be "ignore", got ${String(options.onConflict)}`);
  }
  const columns = Object.keys(row).filter((c) => row[c] !== undefined).sort();
  if (columns.length === 0) throw new TypeError("insert(): the row has no column");
  const values: Record<string, unknown> = {};
  for (const c of columns) {
    if (!NAME.test(c)) {
      throw new TypeError(
        `insert(): "${c}" is not a column name this accepts (letters, digits, _ and $)`,
      );
    }
    values[c] = jsonValue(row[c], c);
  }
  const conflict = options.onConflict === "ignore" ? " ON CONFLICT DO NOTHING" : "";
  const target = parts.map((p) => `"${p}"`).join(".");
  const list = columns.map((c) => `"${c}"`).join(", ");
  const statement = `INSERT INTO ${target} (${list})
      SELECT ${list} FROM json_populate_recordset(NULL::${target}, $1::json)${conflict}`;
  return { statement, json: JSON.stringify(values) };
}

/**
 * A value as JSON carries it to the column's text input: a `bigint` as its digits, bytes as
 * `bytea`'s hex form, a `Date` as its ISO string (by `toJSON`); functions and symbols throw.
 */
function jsonValue(v: unknown, column: string): unknown {
  switch (typeof v) {
    case "bigint":
      return v.toString();
    case "function":
    case "symbol":
      throw new TypeError(`insert(): column "${column}" holds a ${typeof v}, which has no value`);
    case "number":
      if (!Number.isFinite(v)) {
        throw new TypeError(`insert(): column "${column}" holds ${v}, which JSON cannot carry`);
      }
      return v;
    default:
      if (v instanceof Uint8Array) return `\\x${hex(v)}`;
      return v;
  }
}

function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Writes `rows` in one statement for each of their statements, in order of first appearance. */
export async function insertRows(tx: SqlExecutor, rows: readonly DeclaredRow[]): Promise<void> {
  const byStatement = new Map<string, string[]>();
  for (const r of rows) {
    const list = byStatement.get(r.statement);
    if (list) list.push(r.json);
    else byStatement.set(r.statement, [r.json]);
  }
  for (const [statement, jsons] of byStatement) {
    await tx.query(statement, [`[${jsons.join(",")}]`]);
  }
}
