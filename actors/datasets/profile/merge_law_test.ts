/**
 * The merge law: profiling a dataset in 1 chunk and in 17 chunks (merged in two different
 * trees, and through JSON) gives identical exact statistics, and sketches within their stated
 * error of the truth. Exact figures (distinct values, top values, quantiles within the bounds)
 * are checked against a plain computation: a Map of counts, a sort and linear interpolation.
 */
import assert from "node:assert/strict";
import { type ColumnSummary, EXACT_DISTINCT, type Value, type ValueType } from "./column.ts";
import { kllRankError } from "./quantiles.ts";
import { TableProfile } from "./table.ts";
import { normal, prng, rankError, relDiff } from "./test_util.ts";

const ROWS = 200_000;
const CHUNKS = 17;
const NAMES = ["id", "amount", "qty", "category", "user", "active", "day", "ts", "note"];
const TYPES: ValueType[] = [
  "integer",
  "float",
  "integer",
  "string",
  "string",
  "boolean",
  "date",
  "datetime",
  "string",
];
const CATEGORIES = ["books", "games", "music", "garden", "toys", "food", "tools", "sport"];

function isoDay(d: number): string {
  return new Date(Date.UTC(2021, 0, 1) + d * 86_400_000).toISOString().slice(0, 10);
}

/** Deterministic mixed rows: unique ints, log-normal floats, small ints, Zipf categories,... */
function makeRows(): Value[][] {
  const r = prng(2024);
  return Array.from({ length: ROWS }, (_, i) => {
    const nullish = r();
    return [
      1_000_003 + i * 7,
      nullish < 0.02 ? null : Math.round(Math.exp(3 + 1.5 * normal(r)) * 100) / 100,
      Math.floor(r() * r() * 21),
      nullish > 0.99 ? null : CATEGORIES[Math.floor(Math.pow(CATEGORIES.length, r()) - 1)]!,
      `u${Math.floor(Math.pow(60_000, r()))}-${Math.floor(r() * 3)}`,
      nullish < 0.05 ? null : r() < 0.3,
      isoDay(Math.floor(r() * 1096)),
      new Date(Date.UTC(2022, 0, 1) + Math.floor(r() * 3e10)).toISOString(),
      r() < 0.5 ? Math.floor(r() * 25) : `n${Math.floor(r() * 30)}`,
    ];
  });
}

const rows = makeRows();

function profile(from: number, to: number): TableProfile {
  const t = new TableProfile(NAMES);
  for (let i = from; i < to; i++) t.addRow(rows[i]!, TYPES);
  return t;
}

/** 17 uneven chunks of the first `total` rows (boundaries jittered). */
function chunks(total = ROWS): TableProfile[] {
  const r = prng(17);
  const cuts = [0];
  for (let c = 1; c < CHUNKS; c++) {
    cuts.push(Math.floor((c * total) / CHUNKS + (r() - 0.5) * (total / 40)));
  }
  cuts.push(total);
  return cuts.slice(1).map((end, c) => profile(cuts[c]!, end));
}

function copy(t: TableProfile): TableProfile {
  return TableProfile.fromJSON(JSON.parse(JSON.stringify(t)));
}

/** Left fold in chunk order. */
function chain(parts: TableProfile[]): TableProfile {
  return parts.map(copy).reduce((acc, p) => acc.merge(p), new TableProfile());
}

/** Balanced pairwise tree over the chunks in reverse order. */
function tree(parts: TableProfile[]): TableProfile {
  let level = parts.map(copy).reverse();
  while (level.length > 1) {
    const next: TableProfile[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? level[i + 1]!.merge(level[i]!) : level[i]!);
    }
    level = next;
  }
  return level[0]!;
}

interface Truth {
  values: Float64Array;
  counts: Map<string, number>;
}

function truth(col: number, total = ROWS): Truth {
  const nums: number[] = [];
  const counts = new Map<string, number>();
  for (const row of rows.slice(0, total)) {
    const v = row[col]!;
    if (v === null) continue;
    if (typeof v === "number") nums.push(v);
    const s = String(v);
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  return { values: Float64Array.from(nums).sort(), counts };
}

const EXACT_FIELDS = [
  "type",
  "count",
  "nulls",
  "min",
  "max",
  "types",
  "distinctExact",
  "quantilesExact",
] as const;

/** The `n` most frequent values, by count descending then value (UTF-16 order). */
function topOf(counts: Map<string, number>, n: number): [string, number][] {
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n);
}

/** Linear interpolation between the closest ranks of ascending `sorted`, as pandas does. */
function interpolated(sorted: Float64Array, q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (h - lo);
}

const QS = { p01: 0.01, p05: 0.05, p25: 0.25, p50: 0.5, p75: 0.75, p95: 0.95, p99: 0.99 };

const whole = profile(0, ROWS);
const parts = chunks();
const merges = { chain: chain(parts), tree: tree(parts) };

Deno.test("merge law: exact fields identical, mean/variance within 1e-9", () => {
  for (const merged of Object.values(merges)) {
    assert.equal(merged.rows, ROWS);
    assert.deepEqual(merged.names, NAMES);
    NAMES.forEach((name) => {
      const a = whole.column(name)!.summary();
      const b = merged.column(name)!.summary();
      for (const f of EXACT_FIELDS) assert.deepEqual(b[f], a[f], `${name}.${f}`);
      for (const f of ["mean", "variance", "stddev", "populationVariance"] as const) {
        if (a[f] === null) assert.equal(b[f], null, `${name}.${f}`);
        else assert.ok(relDiff(a[f], b[f]!) < 1e-9, `${name}.${f}: ${a[f]} vs ${b[f]}`);
      }
    });
  }
  const amount = whole.column("amount")!.summary();
  assert.equal(amount.type, "float");
  assert.ok(amount.nulls > 3000 && amount.nulls < 5000);
  assert.equal(whole.column("note")!.summary().type, "string");
});

Deno.test("merge law: HLL registers equal, distinct within 3 standard errors", () => {
  NAMES.forEach((name, col) => {
    const h = whole.column(name)!.hll;
    for (const merged of Object.values(merges)) {
      assert.ok(merged.column(name)!.hll.equals(h), `${name}: registers differ`);
    }
    const trueDistinct = truth(col).counts.size;
    const s: ColumnSummary = merges.tree.column(name)!.summary();
    assert.equal(s.distinctExact, trueDistinct <= EXACT_DISTINCT, name);
    if (s.distinctExact) {
      assert.equal(s.distinct, trueDistinct, name);
      return;
    }
    assert.ok(s.distinct <= s.count, `${name}: ${s.distinct} distinct of ${s.count}`);
    const est = h.estimate();
    assert.ok(
      Math.abs(est - trueDistinct) <= 3 * h.standardError * trueDistinct,
      `${name}: HLL ${est} vs ${trueDistinct}`,
    );
  });
  assert.ok(truth(0).counts.size === ROWS);
});

Deno.test("merge law: quantiles within the stated rank error of the exact quantiles", () => {
  const eps = kllRankError(200);
  for (const name of ["id", "amount", "qty"]) {
    const sorted = truth(NAMES.indexOf(name)).values;
    assert.ok(sorted.length > 100_000, "past the exact bound");
    for (const profile of [whole, merges.chain, merges.tree]) {
      const s = profile.column(name)!.summary();
      assert.equal(s.quantilesExact, false);
      const quantiles = s.quantiles!;
      for (const [key, q] of Object.entries(QS)) {
        const x = quantiles[key as keyof typeof quantiles];
        const err = rankError(sorted, q, x);
        assert.ok(err <= eps, `${name}.${key}: ${x} has rank error ${err}`);
      }
    }
  }
  assert.equal(whole.column("category")!.summary().quantiles, null);
});

Deno.test("merge law: top values exact within the distinct bound, bounded otherwise", () => {
  NAMES.forEach((name, col) => {
    const { counts } = truth(col);
    const a = whole.column(name)!.summary(20).topValues;
    for (const merged of Object.values(merges)) {
      const top = merged.column(name)!.top;
      if (counts.size <= EXACT_DISTINCT) {
        const expected = topOf(counts, 20).map(([value, count]) => ({ value, count, error: 0 }));
        assert.deepEqual(merged.column(name)!.summary(20).topValues, expected, name);
        assert.deepEqual(a, expected, name);
      } else {
        assert.ok(top.error <= ROWS / (top.capacity / 2 + 1));
        for (const [value, f] of counts) {
          const c = top.count(value);
          assert.ok(c <= f && f <= c + top.error, `${name} ${value}: ${c} / ${f}`);
        }
      }
    }
  });
  // The categories, quantities, booleans, days and notes fit; ids, amounts, users and times
  // do not.
  const fits = NAMES.filter((_, col) => truth(col).counts.size <= EXACT_DISTINCT);
  assert.deepEqual(fits, ["qty", "category", "active", "day", "note"]);
});

Deno.test("merge law within the bounds: exact quantiles, distinct and top values, any chunking", () => {
  const total = 60_000; // every column within the number bound, some past the distinct bound
  const small = {
    whole: profile(0, total),
    chain: chain(chunks(total)),
    tree: tree(chunks(total)),
  };
  NAMES.forEach((name, col) => {
    const { values, counts } = truth(col, total);
    const a = small.whole.column(name)!.summary(20);
    for (const p of Object.values(small)) {
      const s = p.column(name)!.summary(20);
      assert.deepEqual(s.quantiles, a.quantiles, name);
      assert.equal(s.quantilesExact, s.quantiles !== null, name);
      assert.equal(s.distinctExact, counts.size <= EXACT_DISTINCT, name);
      if (s.distinctExact) {
        assert.equal(s.distinct, counts.size, name);
        const expected = topOf(counts, 20).map(([value, count]) => ({ value, count, error: 0 }));
        assert.deepEqual(s.topValues, expected, name);
      } else assert.ok(s.distinct <= s.count, name);
    }
    if (values.length === 0 || a.type === "string") return;
    for (const [key, q] of Object.entries(QS)) {
      const x = a.quantiles![key as keyof typeof QS];
      const want = interpolated(values, q);
      assert.ok(relDiff(x, want) <= 1e-12, `${name}.${key}: ${x} vs ${want}`);
    }
  });
  assert.deepEqual(
    NAMES.filter((_, col) => truth(col, total).counts.size > EXACT_DISTINCT),
    ["id", "amount", "user", "ts"],
  );
});

Deno.test("merge law: JSON round trip — merged from JSON equals merged in memory", () => {
  const inMemory = parts.map((p) => p.toJSON()).map((j) => TableProfile.fromJSON(j));
  const memory = parts.slice(1).reduce(
    (acc, p) => acc.merge(p),
    TableProfile.fromJSON(parts[0]!.toJSON()),
  );
  const stored = parts.map((p) => JSON.stringify(p));
  const fromJson = stored.map((s) => TableProfile.fromJSON(JSON.parse(s)))
    .reduce((acc, p) => acc.merge(p));
  assert.equal(JSON.stringify(fromJson), JSON.stringify(memory));
  // Folding the stored chunk profiles as the merge actor does (mergeJSON) is the same too.
  const folded = stored.slice(1).reduce(
    (acc, text) => acc.mergeJSON(JSON.parse(text)),
    TableProfile.fromJSON(JSON.parse(stored[0]!)),
  );
  assert.equal(JSON.stringify(folded), JSON.stringify(memory));
  assert.deepEqual(fromJson.summary(), memory.summary());
  assert.equal(JSON.stringify(merges.chain), JSON.stringify(memory));
  assert.equal(inMemory.length, CHUNKS);
  // Serialization itself is exact and stable.
  const text = JSON.stringify(merges.tree);
  assert.equal(JSON.stringify(TableProfile.fromJSON(JSON.parse(text))), text);
  assert.ok(text.length < 200_000, `merged profile is ${text.length} bytes`);
});
