/**
 * Troupe's column profiles against pandas on the same files: distinct counts (`nunique`), top
 * values (`value_counts`) and quantiles (`Series.quantile`, linear interpolation). Each file is
 * profiled as the pipeline does it, in small chunks (64 KiB by default, so that even small
 * files are merged from several), by the chunk workers; pandas reads it with `read_csv`'s
 * defaults (Debian `python3-pandas`).
 *
 *   deno run -A bench/profile_check.ts FILE.csv... [--chunk-kib 64]
 *
 * Prints one line a column (`ok` or what differs) and exits 1 when an exact figure differs.
 * Values are compared by their text, numbers by value (pandas writes `1.0` where Troupe writes
 * `1`); a column whose nulls the two read differently (null tokens) is reported, not compared.
 */
import { parseArgs } from "node:util";
import { ChunkProcessor } from "../actors/datasets/chunk_work.ts";
import { chunkStream } from "../actors/datasets/ingest/split.ts";
import { parseChunk } from "../actors/datasets/ingest/parse.ts";
import { ChunkProfileMerge, type ColumnReport } from "../actors/datasets/profiles.ts";

const { values: args, positionals: files } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { "chunk-kib": { type: "string", default: "64" } },
});
if (files.length === 0) throw new Error("usage: profile_check.ts FILE.csv...");

const QS = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];
const KEYS = ["p01", "p05", "p25", "p50", "p75", "p95", "p99"] as const;

interface PandasColumn {
  count: number;
  nunique: number;
  /** Every value's count, by pandas' text of the value. */
  counts: [string, number][];
  quantiles: number[] | null;
}

/** Profiles a file through the chunk workers, as the pipeline does (nothing stored). */
async function troupe(file: string, chunkBytes: number): Promise<Map<string, ColumnReport>> {
  const processor = new ChunkProcessor(2);
  const merge = new ChunkProfileMerge();
  const outs: { header: string[]; types: never[]; profile: unknown }[] = [];
  let header: string[] = [];
  const input = await Deno.open(file);
  const pending: Promise<void>[] = [];
  for await (
    const c of chunkStream(input.readable, {
      format: { kind: "csv", delimiter: "," },
      encoding: "utf-8",
      targetChunkBytes: chunkBytes,
    }, { alloc: (size) => processor.input(size) })
  ) {
    const idx = c.boundary.index;
    if (idx === 0) header = parseChunk(c.bytes, { format: "csv", errorPolicy: "skip" }).header;
    pending.push(
      processor.process(c.bytes, {
        idx,
        parse: {
          format: "csv",
          delimiter: ",",
          encoding: "utf-8",
          ...(idx > 0 ? { header } : {}),
          chunk: { index: idx, firstLine: c.boundary.firstLine, start: c.boundary.start },
        },
        cleaning: {},
      }).then((out) => {
        if (out.kind !== "done") throw new Error(out.failure.message);
        processor.recycle(out.copy);
        // Through JSON, as the pipeline stores them.
        outs[idx] = JSON.parse(JSON.stringify({
          header: out.header,
          types: out.types,
          profile: JSON.parse(out.profileJson),
        }));
      }),
    );
  }
  await Promise.all(pending);
  processor.close();
  for (const out of outs) merge.add(out);
  return merge.reports();
}

async function pandas(file: string): Promise<Record<string, PandasColumn>> {
  const script = `
import json, sys
import pandas as pd
df = pd.read_csv(sys.argv[1], low_memory=False)
qs = ${JSON.stringify(QS)}
out = {}
for name in df.columns:
    s = df[name]
    vc = s.value_counts(dropna=True)
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    nn = s.dropna()
    out[str(name)] = {
        "count": int(nn.shape[0]),
        "nunique": int(s.nunique(dropna=True)),
        "counts": [[str(k), int(v)] for k, v in vc.items()],
        "quantiles": [float(x) for x in nn.quantile(qs).tolist()] if numeric and len(nn) else None,
    }
print(json.dumps(out))
`;
  const out = await new Deno.Command("/usr/bin/python3", {
    args: ["-c", script, file],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("pandas run failed (is python3-pandas installed?)");
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** A value's identity across the two: numbers by value, booleans and texts by text. */
function norm(v: string): string {
  const n = Number(v);
  if (v.trim() !== "" && Number.isFinite(n)) return String(n);
  if (v === "True" || v === "False") return v.toLowerCase();
  return v;
}

let differences = 0;
for (const file of files) {
  const [mine, theirs] = await Promise.all([
    troupe(file, Number(args["chunk-kib"]) * 1024),
    pandas(file),
  ]);
  console.log(`\n${file}`);
  for (const [name, p] of mine) {
    const q = theirs[name];
    if (!q) {
      console.log(`  ${name}: not in pandas' columns`);
      continue;
    }
    const notes: string[] = [];
    if (p.count !== q.count) {
      console.log(
        `  ${name}: non-null ${p.count} vs pandas ${q.count} (null tokens read differently)`,
      );
      continue;
    }
    const counts = new Map(q.counts.map(([v, c]) => [norm(v), c]));
    if (p.distinctExact && p.distinct !== q.nunique) {
      notes.push(`distinct ${p.distinct} vs ${q.nunique}`);
    }
    if (!p.distinctExact) {
      notes.push(`distinct ~${p.distinct} (sketch) vs ${q.nunique}`);
      if (p.distinct > p.count) notes.push("estimate above the count");
    }
    const topCounts = q.counts.slice(0, p.topValues.length).map(([, c]) => c);
    if (p.distinctExact) {
      const mineCounts = p.topValues.map((e) => e.count);
      if (JSON.stringify(mineCounts) !== JSON.stringify(topCounts)) {
        notes.push(`top counts ${mineCounts} vs ${topCounts}`);
      }
      for (const e of p.topValues) {
        const c = counts.get(norm(e.value));
        if (c !== e.count) notes.push(`top ${e.value}: ${e.count} vs ${c}`);
      }
    }
    if (p.quantiles && q.quantiles) {
      KEYS.forEach((key, i) => {
        const a = p.quantiles![key];
        const b = q.quantiles![i]!;
        const tolerance = p.quantilesExact ? 1e-12 * Math.max(1, Math.abs(b)) : Infinity;
        if (Math.abs(a - b) > tolerance) notes.push(`${key} ${a} vs ${b}`);
      });
    }
    const exact = notes.length === 0 ||
      (!p.distinctExact && notes.every((n) => n.includes("(sketch)")));
    if (!exact) differences++;
    const tags = [
      p.distinctExact ? "distinct exact" : "distinct sketched",
      p.quantiles ? (p.quantilesExact ? "quantiles exact" : "quantiles sketched") : "",
    ].filter(Boolean).join(", ");
    console.log(
      `  ${name} (${p.type}, ${p.count} values, ${tags}): ${
        notes.length ? notes.join("; ") : "ok"
      }`,
    );
  }
}
if (differences) {
  console.log(`\n${differences} column(s) differ`);
  Deno.exit(1);
}
