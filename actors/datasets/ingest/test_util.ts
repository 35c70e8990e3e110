/** Test helpers: seeded PRNG, byte streams, and split-then-parse of a whole input. */
import { parseChunk, type ParseOptions, type ParseResult } from "./parse.ts";
import { type ChunkBoundary, chunkStream, type SplitOptions, splitStream } from "./split.ts";

/** Mulberry32: small deterministic PRNG returning floats in [0, 1). */
export { seeded as prng } from "../../../tests/fixtures/seeded.ts";

/** A stream delivering `bytes` in pieces of `piece` bytes (exercises state across reads). */
export function streamOf(bytes: Uint8Array, piece = 64 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

/**
 * A byte stream (`type: "bytes"`, as a file's is) delivering `bytes` at most `piece` bytes a
 * read, into the reader's own buffer when it brings one.
 */
export function byteStreamOf(bytes: Uint8Array, piece = 64 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      const request = controller.byobRequest;
      if (at >= bytes.length) {
        controller.close();
        request?.respond(0);
        return;
      }
      if (request) {
        const view = new Uint8Array(request.view!.buffer, request.view!.byteOffset);
        const n = Math.min(piece, bytes.length - at, request.view!.byteLength);
        view.set(bytes.subarray(at, at + n));
        at += n;
        request.respond(n);
      } else {
        controller.enqueue(bytes.slice(at, at + piece));
        at += piece;
      }
    },
  });
}

/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** All boundaries of a split. */
export async function boundaries(
  bytes: Uint8Array,
  options: SplitOptions,
  piece?: number,
): Promise<ChunkBoundary[]> {
  const out: ChunkBoundary[] = [];
  for await (const b of splitStream(streamOf(bytes, piece), options)) out.push(b);
  return out;
}

/** Merged result of splitting then parsing every chunk (header from chunk 0). */
export interface WholeResult extends ParseResult {
  chunks: ChunkBoundary[];
}

/** Splits `bytes`, parses each chunk in order, and concatenates the rows and errors. */
export async function splitAndParse(
  bytes: Uint8Array,
  split: SplitOptions,
  parse: ParseOptions,
  piece?: number,
): Promise<WholeResult> {
  const result: WholeResult = { header: [], rows: [], errors: [], skipped: 0, chunks: [] };
  let header: string[] | undefined;
  for await (const { boundary, bytes: chunk } of chunkStream(streamOf(bytes, piece), split)) {
    const opts: ParseOptions = { ...parse, chunk: boundary };
    if (header !== undefined) opts.header = header;
    const r = parseChunk(chunk, opts);
    header = r.header;
    result.header = r.header;
    result.rows.push(...r.rows);
    result.errors.push(...r.errors);
    result.skipped += r.skipped;
    result.chunks.push(boundary);
  }
  return result;
}

/**
 * Records of `text` as Python's `csv` module reads them (the stdlib, always there with
 * python3): the reference for how a spreadsheet-style reader treats CSV.
 */
export async function pythonCsv(
  text: string,
  { delimiter = ",", quoting = true }: { delimiter?: string; quoting?: boolean } = {},
): Promise<string[][]> {
  const script = "import csv, io, json, sys\n" +
    "d, q = sys.argv[1], sys.argv[2] == 'true'\n" +
    "opts = {'delimiter': d} if q else {'delimiter': d, 'quoting': csv.QUOTE_NONE}\n" +
    "src = io.StringIO(sys.stdin.read(), newline='')\n" +
    "print(json.dumps([r for r in csv.reader(src, **opts) if r]))";
  const child = new Deno.Command("python3", {
    args: ["-c", script, delimiter, String(quoting)],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error("python3 csv failed");
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
