/**
 * Dataset ingest throughput (pure library, one thread, this process).
 *
 *   deno run -A bench/ingest_parse.ts [--mb 50] [--chunk-mib 4] [--runs 2]
 *
 * Generates a ~50 MB mixed CSV (integers, floats, booleans, dates, datetimes, text, quoted
 * fields with delimiters and newlines, some empty / NA cells) into a temp file, then streams
 * it from disk and measures MB/s for: split only; split + parse (csv-parse per chunk);
 * split + parse + type inference; plus, as a reference, the time spent inside csv-parse alone
 * (default options) on the same chunks. Deletes the temp file. Figures are single-core: the
 * pipeline parses chunks in parallel, one message per chunk.
 */
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { parse as csvParse } from "csv-parse/sync";
import { chunkStream } from "../actors/datasets/ingest/split.ts";
import { parseChunk } from "../actors/datasets/ingest/parse.ts";
import { TypeInference } from "../actors/datasets/ingest/infer.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    mb: { type: "string", default: "50" },
    "chunk-mib": { type: "string", default: "4" },
    runs: { type: "string", default: "2" },
  },
});
const TARGET_BYTES = Number(args.mb) * 1_000_000;
const CHUNK = Number(args["chunk-mib"]) * 1024 * 1024;
const RUNS = Number(args.runs);

const WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"];

/** Writes the generated CSV to `path`; returns its size. */
async function generate(path: string): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  let size = 0;
  let i = 0;
  const header = "id,price,qty,active,day,ts,name,note,score\n";
  await file.write(enc.encode(header));
  size += header.length;
  while (size < TARGET_BYTES) {
    const lines: string[] = [];
    for (let k = 0; k < 5000; k++, i++) lines.push(row(i));
    const bytes = enc.encode(lines.join(""));
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    size += bytes.length;
  }
  file.close();
  return size;
}

function row(i: number): string {
  const w = WORDS[i % WORDS.length]!;
  const day = `2024-${String(1 + (i % 12)).padStart(2, "0")}-${
    String(1 + (i % 28)).padStart(2, "0")
  }`;
  const note = i % 7 === 0
    ? `"${w}, ""quoted""\nsecond line"`
    : i % 5 === 0
    ? ""
    : `${w} ${w} note ${i % 1000}`;
  const score = i % 11 === 0 ? "NA" : (i % 97).toString();
  return `${i},${(i * 0.37).toFixed(2)},${i % 500},${i % 2 ? "true" : "false"},${day},` +
    `${day}T${String(i % 24).padStart(2, "0")}:15:30Z,${w}_${i % 3000},${note},${score}\n`;
}

type Stage = "split" | "split+parse" | "split+parse+infer" | "csv-parse alone (reference)";

async function measure(path: string, stage: Stage): Promise<{ seconds: number; rows: number }> {
  const file = await Deno.open(path, { read: true });
  const t0 = performance.now();
  let header: string[] | undefined;
  let inference: TypeInference | undefined;
  let rows = 0;
  let parseOnly = 0;
  for await (
    const { boundary, bytes } of chunkStream(file.readable, {
      format: { kind: "csv" },
      targetChunkBytes: CHUNK,
    })
  ) {
    if (stage === "split") continue;
    if (stage === "csv-parse alone (reference)") {
      // Only the time inside csv-parse (default options) on the same chunks.
      const t = performance.now();
      rows += csvParse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).length;
      parseOnly += performance.now() - t;
      continue;
    }
    const r = parseChunk(bytes, {
      format: "csv",
      chunk: boundary,
      ...(header === undefined ? {} : { header }),
    });
    header = r.header;
    rows += r.rows.length;
    if (stage === "split+parse+infer") {
      inference ??= new TypeInference(header.length);
      inference.add(r.rows);
    }
  }
  const elapsed = stage === "csv-parse alone (reference)" ? parseOnly : performance.now() - t0;
  const seconds = elapsed / 1000;
  if (inference !== undefined && rows > 0) {
    const types = inference.stats().map((s) => s.type).join(",");
    if (stage === "split+parse+infer") console.log(`  inferred types: ${types}`);
  }
  return { seconds, rows };
}

const path = await Deno.makeTempFile({ prefix: "ingest_bench_", suffix: ".csv" });
try {
  const size = await generate(path);
  const mb = size / 1e6;
  console.log(`file: ${mb.toFixed(1)} MB, chunks of ${args["chunk-mib"]} MiB, best of ${RUNS}`);
  const table: { stage: Stage; "MB/s": string; seconds: string; rows: number }[] = [];
  const stages = [
    "split",
    "csv-parse alone (reference)",
    "split+parse",
    "split+parse+infer",
  ] as const;
  for (const stage of stages) {
    let best = Infinity;
    let rows = 0;
    for (let r = 0; r < RUNS; r++) {
      const m = await measure(path, stage);
      best = Math.min(best, m.seconds);
      rows = m.rows;
    }
    table.push({ stage, "MB/s": (mb / best).toFixed(1), seconds: best.toFixed(2), rows });
  }
  console.table(table);
} finally {
  await Deno.remove(path);
}
