/**
 * Troupe's profiling stage alone, as pandas' `read_csv` + `describe` is measured: a CSV file
 * on disk is split into chunks, each chunk parsed, typed, cleaned, profiled (and its COPY
 * text written, as the pipeline does) in a pool of workers, the chunk profiles merged.
 * Nothing is stored. Prints one JSON line: seconds, rows, columns, chunks, workers, the
 * columns' merged types (name → type, as the pipeline stores them) and `cpu`, the process's
 * CPU seconds (all its threads, user + system).
 *
 *   deno run -A bench/profile_file.ts FILE [--workers 2] [--chunk-mib 1]
 *
 * Used by bench/ingest.ts, in its own process so that its peak RSS is its own.
 */
import { parseArgs } from "node:util";
import { ChunkProcessor } from "../actors/datasets/chunk_work.ts";
import { chunkStream } from "../actors/datasets/ingest/split.ts";
import { parseChunk } from "../actors/datasets/ingest/parse.ts";
import { ChunkProfileMerge } from "../actors/datasets/profiles.ts";
import type { ColumnType } from "../actors/datasets/ingest/infer.ts";
import { cores } from "@troupe/runtime/workers";
import process from "node:process";

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    workers: { type: "string" },
    "chunk-mib": { type: "string", default: "1" },
  },
});
const file = positionals[0];
if (!file) throw new Error("usage: profile_file.ts FILE");
const workers = Number(args.workers ?? cores());
const processor = new ChunkProcessor(workers);
const t0 = performance.now();
const pending = new Set<Promise<void>>();
// Chunk profiles are folded in chunk order as they come back (the few that come early wait
// for their turn), as the main thread would otherwise idle: nothing is held for a final merge.
const merge = new ChunkProfileMerge();
const early = new Map<number, { header: string[]; types: ColumnType[]; profile: unknown }>();
let next = 0;
let rows = 0;
let chunks = 0;
function fold(): void {
  for (let r = early.get(next); r; r = early.get(next)) {
    early.delete(next++);
    merge.add(r);
  }
}
let header: string[] = [];
const input = await Deno.open(file);
for await (
  const c of chunkStream(input.readable, {
    format: { kind: "csv", delimiter: "," },
    encoding: "utf-8",
    targetChunkBytes: Number(args["chunk-mib"]) * 1024 * 1024,
  }, { alloc: (size) => processor.input(size) })
) {
  const idx = c.boundary.index;
  if (idx === 0) header = parseChunk(c.bytes, { format: "csv", errorPolicy: "skip" }).header;
  const p = processor.process(c.bytes, {
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
    pending.delete(p);
    if (out.kind !== "done") throw new Error(out.failure.message);
    // Nothing is stored here: the COPY segments go back at once, as the pipeline's do once
    // stored.
    processor.recycle(out.copy);
    // Parsed, as the merge reads a stored chunk profile.
    early.set(idx, { header: out.header, types: out.types, profile: JSON.parse(out.profileJson) });
    rows += out.rowCount;
    chunks++;
    fold();
  });
  pending.add(p);
  // Bounded memory: at most two chunks a worker in flight.
  if (pending.size >= Math.max(1, workers) * 2) await Promise.race(pending);
}
await Promise.all(pending);
processor.close();
const reports = merge.reports();
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({
  seconds,
  rows,
  columns: reports.size,
  chunks,
  workers,
  types: Object.fromEntries(merge.types),
  cpu: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
}));
