/**
 * The glue between the pipeline and the mergeable profiles: a chunk's cleaned rows become a
 * serialized `TableProfile`; at the merge, the chunk profiles fold into one, and each column
 * gets its summary plus, for numeric columns, a 20-bin histogram read off the merged
 * numbers (exact while the profile keeps them, else within the quantile sketch's rank error).
 */
import {
  ColumnProfile,
  type ColumnSummary,
  TableProfile,
  type TableProfileJSON,
  type Value,
  type ValueType,
} from "./profile/mod.ts";
import { type ColumnType, joinTypes } from "./ingest/infer.ts";

const BINS = 20;

export interface ColumnReport extends ColumnSummary {
  histogram: { edges: number[]; counts: number[] } | null;
}

/** Profiles a chunk's cleaned rows (aligned with `header`, typed by `types`). */
export function profileRows(
  header: readonly string[],
  types: readonly string[],
  rows: readonly (readonly unknown[])[],
): TableProfileJSON {
  const profile = new TableProfile(header);
  const valueTypes = types as readonly ValueType[];
  const values: Value[] = new Array(header.length);
  for (const row of rows) {
    for (let i = 0; i < header.length; i++) {
      const v = row[i];
      values[i] = v === undefined || v === null
        ? null
        : typeof v === "object"
        ? JSON.stringify(v)
        : v as Value;
    }
    profile.addRow(values, valueTypes);
  }
  return profile.toJSON();
}

/** A {@link ChunkProfileMerge} serialized: the profile so far and the types, in order. */
export interface ChunkProfileMergeJSON {
  profile: TableProfileJSON;
  types: [string, ColumnType][];
}

/**
 * Folds chunk profiles one at a time, in chunk order, so that a merge holds one running
 * profile and the chunk at hand, not every chunk's sketches (a 1 GB file has ~1,000 chunks
 * of ~200 KB of sketches each). Column types are joined along the way.
 */
export class ChunkProfileMerge {
  readonly #merged: TableProfile;
  /** Each column's type, joined over the chunks so far, in first-seen order. */
  readonly types: Map<string, ColumnType>;

  /** An empty merge, or one going on from {@link ChunkProfileMerge.toJSON}'s `saved`. */
  constructor(saved?: ChunkProfileMergeJSON) {
    this.#merged = saved ? TableProfile.fromJSON(saved.profile) : new TableProfile();
    this.types = new Map(saved?.types ?? []);
  }

  /** The merge so far, exactly (a merge made from it goes on as this one would). */
  toJSON(): ChunkProfileMergeJSON {
    return { profile: this.#merged.toJSON(), types: [...this.types] };
  }

  /** A chunk's profile, with its cleaned header and inferred types (aligned). */
  add(chunk: { header: readonly string[]; types: readonly ColumnType[]; profile: unknown }): void {
    chunk.header.forEach((name, i) => {
      this.types.set(name, joinTypes(this.types.get(name) ?? "null", chunk.types[i] ?? "string"));
    });
    this.#merged.mergeJSON(chunk.profile as TableProfileJSON);
  }

  /**
   * Each column's report, by name, for the columns of `order` (default: those seen); a column
   * no chunk had gets an empty profile.
   */
  reports(order: readonly string[] = [...this.types.keys()]): Map<string, ColumnReport> {
    const out = new Map<string, ColumnReport>();
    for (const name of order) {
      const column = this.#merged.column(name) ?? new ColumnProfile();
      const summary = column.summary();
      const type = this.types.get(name);
      const numeric = type === "integer" || type === "float";
      out.set(name, {
        ...summary,
        histogram: numeric ? histogram(column, summary) : null,
      });
    }
    return out;
  }
}

/** Bins read off the column's numbers ({@link ColumnProfile.rank}). */
function histogram(column: ColumnProfile, s: ColumnSummary): ColumnReport["histogram"] {
  if (typeof s.min !== "number" || typeof s.max !== "number" || s.count === 0) return null;
  const min = s.min;
  const max = s.max;
  if (min === max) return { edges: [min, max], counts: [s.count] };
  const edges = Array.from({ length: BINS + 1 }, (_, i) => min + ((max - min) * i) / BINS);
  const counts: number[] = [];
  let below = 0;
  for (let i = 1; i <= BINS; i++) {
    const at = i === BINS ? 1 : column.rank(edges[i]!) ?? 0;
    counts.push(Math.max(0, Math.round((at - below) * s.count)));
    below = at;
  }
  return { edges, counts };
}
