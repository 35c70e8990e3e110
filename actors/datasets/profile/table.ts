/**
 * {@link TableProfile}: an ordered map of column name → {@link ColumnProfile}, mergeable and
 * serializable. Columns are kept in first-seen order (JSON keeps them as an array of pairs, as
 * neither JS objects nor Postgres `jsonb` preserve key order).
 * @module
 */
import {
  ColumnProfile,
  type ColumnProfileJSON,
  type ColumnSummary,
  type ProfileOptions,
  type Value,
  type ValueType,
  valueType,
} from "./column.ts";

/** Serialized {@link TableProfile}. */
export interface TableProfileJSON {
  /** Format version. */
  v: 1;
  /** Rows added (directly or through merges). */
  rows: number;
  options: ProfileOptions;
  columns: [string, ColumnProfileJSON][];
}

/** Summary of a table: rows and per-column statistics, in column order. */
export interface TableSummary {
  rows: number;
  columns: (ColumnSummary & { name: string })[];
}

/** Mergeable profile of a table (one per chunk, merged at the end). */
export class TableProfile {
  readonly #options: ProfileOptions;
  readonly #columns = new Map<string, ColumnProfile>();
  /** Columns of {@link TableProfile.addRow}, by position. */
  #positional: ColumnProfile[];
  #rows = 0;

  /** A profile with the given columns (more can appear through merges). */
  constructor(names: readonly string[] = [], options: ProfileOptions = {}) {
    this.#options = { ...options };
    this.#positional = names.map((name) => this.#columnOrCreate(name));
  }

  /** Rows added. */
  get rows(): number {
    return this.#rows;
  }

  /** Column names in order. */
  get names(): string[] {
    return [...this.#columns.keys()];
  }

  /**
   * The columns of {@link TableProfile.addRow}, by position, for a caller that adds each
   * value to its column as it comes (as `addRow` would) and counts the rows with
   * {@link TableProfile.countRows}.
   */
  get positional(): readonly ColumnProfile[] {
    return this.#positional;
  }

  /** Counts `n` rows whose values were added to the {@link TableProfile.positional} columns. */
  countRows(n: number): void {
    this.#rows += n;
  }

  /** The profile of a column, if present. */
  column(name: string): ColumnProfile | undefined {
    return this.#columns.get(name);
  }

  /**
   * Adds a row whose values are aligned with the constructor's `names` (missing trailing
   * values are nulls). `columnTypes` (e.g. the inferred types of the chunk) refine each value's
   * type through {@link valueType}. `texts`, when given, holds `String(value)` of the numbers.
   */
  addRow(
    values: readonly Value[],
    columnTypes?: readonly ValueType[],
    texts?: readonly (string | null)[],
  ): void {
    const cols = this.#positional;
    if (values.length > cols.length) {
      throw new RangeError(
        `table profile: row has ${values.length} values, ${cols.length} columns`,
      );
    }
    for (let i = 0; i < cols.length; i++) {
      const v = i < values.length ? values[i]! : null;
      cols[i]!.add(v, valueType(v, columnTypes?.[i]), texts?.[i] ?? undefined);
    }
    this.#rows++;
  }

  /**
   * Folds `other` into this; `other` is unchanged. Columns only in `other` are appended in its
   * order (copied); a column missing from one side contributes nothing for that side's rows.
   */
  merge(other: TableProfile): this {
    for (const [name, col] of other.#columns) {
      const mine = this.#columns.get(name);
      if (mine === undefined) this.#columns.set(name, col.clone());
      else mine.merge(col);
    }
    this.#rows += other.#rows;
    return this;
  }

  /**
   * Folds a serialized profile into this, as `merge(TableProfile.fromJSON(json))` does,
   * without building its columns' sketches where this has the column already
   * ({@link ColumnProfile.mergeJSON}).
   */
  mergeJSON(json: TableProfileJSON): this {
    if (json.v !== 1) throw new TypeError(`table profile: unknown version ${String(json.v)}`);
    const names = new Set<string>();
    for (const [name] of json.columns) {
      if (names.has(name)) throw new TypeError(`table profile: duplicate column ${name}`);
      names.add(name);
    }
    for (const [name, col] of json.columns) {
      const mine = this.#columns.get(name);
      if (mine === undefined) this.#columns.set(name, ColumnProfile.fromJSON(col));
      else mine.mergeJSON(col);
    }
    this.#rows += json.rows;
    return this;
  }

  /**
   * Gives the columns' buffers to profiles made later in this thread ({@link
   * ColumnProfile.release}); this profile must not be used again.
   */
  release(): void {
    for (const column of this.#columns.values()) column.release();
  }

  /** Statistics of every column. */
  summary(topN = 10): TableSummary {
    return {
      rows: this.#rows,
      columns: [...this.#columns].map(([name, col]) => ({ name, ...col.summary(topN) })),
    };
  }

  /** Serialized form: deterministic and exact. */
  toJSON(): TableProfileJSON {
    return {
      v: 1,
      rows: this.#rows,
      options: { ...this.#options },
      columns: [...this.#columns].map(([name, col]) => [name, col.toJSON()]),
    };
  }

  /** Inverse of {@link TableProfile.toJSON}; throws on malformed input. */
  static fromJSON(json: TableProfileJSON): TableProfile {
    if (json.v !== 1) throw new TypeError(`table profile: unknown version ${String(json.v)}`);
    const t = new TableProfile([], json.options);
    for (const [name, col] of json.columns) {
      if (t.#columns.has(name)) throw new TypeError(`table profile: duplicate column ${name}`);
      const profile = ColumnProfile.fromJSON(col);
      t.#columns.set(name, profile);
      t.#positional.push(profile);
    }
    t.#rows = json.rows;
    return t;
  }

  #columnOrCreate(name: string): ColumnProfile {
    let col = this.#columns.get(name);
    if (col === undefined) {
      col = new ColumnProfile(this.#options);
      this.#columns.set(name, col);
    }
    return col;
  }
}
