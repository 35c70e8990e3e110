/**
 * Throughput of the dataset profile sketches (actors/datasets/profile).
 *
 *   deno run bench/profile.ts [--n 2000000] [--runs 3]
 *
 * Rows of the table:
 * - `add`: values per second of `ColumnProfile.add` for one kind of column (best of the runs);
 * - `merge+serialize`: 17 chunk profiles of a mixed 8-column table (n rows in total) are
 *   serialized, parsed back and merged, then the result serialized — per second figures are
 *   profiled values (rows × columns) and JSON bytes.
 */
import { parseArgs } from "node:util";
import {
  ColumnProfile,
  TableProfile,
  type Value,
  type ValueType,
} from "../actors/datasets/profile/mod.ts";
import { seeded } from "../tests/fixtures/seeded.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "2000000" }, runs: { type: "string", default: "3" } },
});
const N = Number(args.n);
const RUNS = Number(args.runs);

const prng = seeded;

interface Workload {
  name: string;
  type: ValueType;
  make: (r: () => number, i: number) => Value;
}

const CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
const workloads: Workload[] = [
  { name: "integers (0..999)", type: "integer", make: (r) => Math.floor(r() * 1000) },
  { name: "integers (unique ids)", type: "integer", make: (_r, i) => 1_000_000 + i },
  { name: "floats (log-normal)", type: "float", make: (r) => Math.exp(r() * 4 + r() * 4) },
  { name: "floats (2 decimals)", type: "float", make: (r) => Math.round(r() * 1e6) / 100 },
  { name: "strings (8 categories)", type: "string", make: (r) => CATEGORIES[Math.floor(r() * 8)]! },
  { name: "strings (unique ids)", type: "string", make: (_r, i) => `user-${i.toString(36)}-x` },
  { name: "dates", type: "date", make: (r) => isoDay(Math.floor(r() * 3650)) },
  { name: "booleans", type: "boolean", make: (r) => r() < 0.3 },
  { name: "nulls", type: "null", make: () => null },
];

function isoDay(d: number): string {
  return new Date(Date.UTC(2015, 0, 1) + d * 86_400_000).toISOString().slice(0, 10);
}

function benchAdd(w: Workload): number {
  const r = prng(7);
  const values: Value[] = Array.from({ length: N }, (_, i) => w.make(r, i));
  let best = 0;
  for (let run = 0; run < RUNS; run++) {
    const col = new ColumnProfile();
    const t0 = performance.now();
    for (let i = 0; i < values.length; i++) col.add(values[i]!, w.type);
    const ms = performance.now() - t0;
    best = Math.max(best, values.length / (ms / 1000));
    if (col.count + col.nulls !== N) throw new Error("lost values");
  }
  return best;
}

function benchMerge(): { valuesPerSec: number; bytesPerSec: number; bytes: number; ms: number } {
  const chunks = 17;
  const names = workloads.slice(0, 8).map((w) => w.name);
  const r = prng(11);
  const parts: TableProfile[] = [];
  const per = Math.ceil(N / chunks);
  for (let c = 0; c < chunks; c++) {
    const t = new TableProfile(names);
    for (let i = c * per; i < Math.min(N, (c + 1) * per); i++) {
      t.addRow(workloads.slice(0, 8).map((w) => w.make(r, i)), workloads.map((w) => w.type));
    }
    parts.push(t);
  }
  let best = Infinity;
  let bytes = 0;
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now();
    const texts = parts.map((p) => JSON.stringify(p));
    const merged = new TableProfile();
    for (const text of texts) merged.merge(TableProfile.fromJSON(JSON.parse(text)));
    const out = JSON.stringify(merged);
    merged.summary();
    best = Math.min(best, performance.now() - t0);
    bytes = texts.reduce((a, t) => a + t.length, 0) + out.length;
  }
  return {
    valuesPerSec: (N * 8) / (best / 1000),
    bytesPerSec: bytes / (best / 1000),
    bytes,
    ms: best,
  };
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} k`;
}

console.log(`ColumnProfile.add — ${N} values per run, best of ${RUNS}`);
console.log("| column | values/s | ns/value |");
console.log("|---|---:|---:|");
for (const w of workloads) {
  const vps = benchAdd(w);
  console.log(`| ${w.name} | ${fmt(vps)} | ${(1e9 / vps).toFixed(0)} |`);
}
const m = benchMerge();
console.log();
console.log(`merge + serialize — 17 chunk profiles × 8 columns (${N} rows)`);
console.log("| step | time | profiled values/s | JSON bytes | JSON MB/s |");
console.log("|---|---:|---:|---:|---:|");
console.log(
  `| stringify 17 + parse + merge + stringify + summary | ${m.ms.toFixed(1)} ms | ${
    fmt(m.valuesPerSec)
  } | ${m.bytes} | ${(m.bytesPerSec / 1e6).toFixed(1)} |`,
);
