/**
 * The CPU cost of one dataset chunk (parse, infer, clean, then COPY bytes and profile in one
 * pass), per stage, on the ingest benchmark's file: MB/s of one thread; then the same work
 * a batch of rows at a time (what the server runs).
 *
 *   deno run -A bench/chunk.ts [--file /tmp/troupe-bench-v2-50mb.csv] [--chunk-mib 1] [--chunks 24]
 */
import { parseArgs } from "node:util";
import { BATCH_ROWS, processChunk } from "../actors/datasets/chunk_work.ts";
import { parseChunk } from "../actors/datasets/ingest/parse.ts";
import { TypeInference } from "../actors/datasets/ingest/infer.ts";
import { cleanRows } from "../actors/datasets/ingest/clean.ts";
import { profileRows } from "../actors/datasets/profiles.ts";
import { chunkStream } from "../actors/datasets/ingest/split.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    file: { type: "string", default: "/tmp/troupe-bench-v2-50mb.csv" },
    "chunk-mib": { type: "string", default: "1" },
    chunks: { type: "string", default: "24" },
  },
});
const chunks: Uint8Array[] = [];
const file = await Deno.open(args.file);
for await (
  const c of chunkStream(file.readable, {
    format: { kind: "csv", delimiter: "," },
    encoding: "utf-8",
    targetChunkBytes: Number(args["chunk-mib"]) * 1024 * 1024,
  })
) {
  chunks.push(c.bytes);
  if (chunks.length >= Number(args.chunks) + 1) break;
}
const header = parseChunk(chunks[0]!, { format: "csv" }).header;
const work = chunks.slice(1);
const bytes = work.reduce((a, c) => a + c.length, 0);
const opts = (idx: number) => ({
  format: "csv" as const,
  delimiter: ",",
  encoding: "utf-8" as const,
  header,
  chunk: { index: idx, firstLine: 1 },
});
const time = (name: string, f: () => void) => {
  f(); // warm
  const t = performance.now();
  f();
  const s = (performance.now() - t) / 1000;
  console.log(
    `| ${name} | ${(bytes / 1e6 / s).toFixed(1)} MB/s | ${
      (s * 1000 / work.length).toFixed(1)
    } ms/chunk |`,
  );
};
console.log(`${work.length} chunks of ~${args["chunk-mib"]} MiB, ${(bytes / 1e6).toFixed(1)} MB\n`);
console.log("| stage (cumulative) | throughput | per chunk |\n|---|---|---|");
time("parse", () => work.forEach((c, i) => parseChunk(c, opts(i + 1))));
time("+ infer", () =>
  work.forEach((c, i) => {
    const p = parseChunk(c, opts(i + 1));
    new TypeInference(p.header.length, {}).add(p.rows);
  }));
time("+ clean", () =>
  work.forEach((c, i) => {
    const p = parseChunk(c, opts(i + 1));
    const inf = new TypeInference(p.header.length, {});
    inf.add(p.rows);
    cleanRows(p.header, p.rows, {}, inf.stats().map((s) => s.type));
  }));
time(
  "+ COPY bytes and profile (= processChunk, whole chunk at once)",
  () =>
    work.forEach((c, i) =>
      processChunk(c, { idx: i + 1, parse: opts(i + 1), cleaning: {} }, { batchRows: Infinity })
    ),
);
time(
  `processChunk in batches of ${BATCH_ROWS} rows (the default)`,
  () => work.forEach((c, i) => processChunk(c, { idx: i + 1, parse: opts(i + 1), cleaning: {} })),
);
const p0 = parseChunk(work[0]!, opts(1));
const inf0 = new TypeInference(p0.header.length, {});
inf0.add(p0.rows);
const types0 = inf0.stats().map((s) => s.type);
const cl0 = cleanRows(p0.header, p0.rows, {}, types0);
const t = performance.now();
for (let r = 0; r < 5; r++) profileRows(cl0.header, types0, cl0.rows);
console.log(`\nprofileRows alone: ${((performance.now() - t) / 5).toFixed(1)} ms per chunk`);
