import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  BinaryContentError,
  findNul,
  GzipError,
  SNIFF_HEAD_BYTES,
  sniffContent,
  sniffedStream,
} from "./binary.ts";
import { gzipBomb } from "../../../tests/hostile/input_files.ts";

const enc = new TextEncoder();

/** `bytes` as a stream of `size`-byte chunks; `cancelled()` tells whether it was let go. */
function pieces(bytes: Uint8Array, size: number) {
  let at = 0;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) controller.close();
      else {
        controller.enqueue(bytes.slice(at, at + size));
        at += size;
      }
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { body, read: () => at, cancelled: () => cancelled };
}

async function text(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

Deno.test("sniffContent() tells binary files by their magic numbers and NULs", () => {
  const cases: [string, number[] | string][] = [
    ["pdf", "%PDF-1.7\n"],
    ["zip", [0x50, 0x4b, 0x03, 0x04, 20, 0]],
    ["gzip", [0x1f, 0x8b, 8, 0]],
    ["png", [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
    ["jpeg", [0xff, 0xd8, 0xff, 0xe0]],
    ["gif", "GIF89a"],
    ["binary", [0x61, 0x2c, 0x62, 0x0a, 0, 1]],
    ["text", "a,b\n1,2\n"],
    ["text", "%PDF is a column name\n"],
  ];
  for (const [kind, bytes] of cases) {
    const head = typeof bytes === "string" ? enc.encode(bytes) : new Uint8Array(bytes);
    assert.equal(sniffContent(head), kind, JSON.stringify(bytes));
  }
  // UTF-16 text holds NULs: by its byte-order mark, or its declared encoding.
  const utf16 = new Uint8Array([0x61, 0, 0x2c, 0, 0x62, 0, 0x0a, 0]);
  assert.equal(sniffContent(new Uint8Array([0xff, 0xfe, ...utf16])), "text");
  assert.equal(sniffContent(utf16, "utf-16le"), "text");
  assert.equal(sniffContent(utf16), "binary");
});

Deno.test("findNul() gives the line of the first NUL, in bytes or UTF-16 units", () => {
  assert.equal(findNul(enc.encode("a\nb\nc"), "utf-8", 1), -1);
  assert.equal(findNul(enc.encode("a\nb\nc\0d\n"), "utf-8", 1), 3);
  assert.equal(findNul(enc.encode("a\nb\0"), "windows-1252", 100), 101);
  const le = (s: string) =>
    new Uint8Array(new Uint16Array([...s].map((c) => c.charCodeAt(0))).buffer);
  // U+0A00 and U+0100 hold 0x0a and 0x00 bytes, and are neither a newline nor a NUL.
  assert.equal(findNul(le("a\n\u0a00\u0100b\nc"), "utf-16le", 1), -1);
  assert.equal(findNul(le("a\n\u0a00b\nc\0"), "utf-16le", 1), 3);
});

Deno.test("sniffedStream() passes text through whole, read in small chunks", async () => {
  const csv = "a,b\n" + "1,2\n".repeat(10_000);
  assert.equal(await text(sniffedStream(pieces(enc.encode(csv), 100).body)), csv);
  assert.equal(await text(sniffedStream(pieces(enc.encode(""), 100).body)), "");
});

Deno.test("sniffedStream() refuses a binary head and reads no further", async () => {
  const pdf = enc.encode("%PDF-1.4\n" + "x".repeat(1_000_000));
  const src = pieces(pdf, 1000);
  await assert.rejects(
    text(sniffedStream(src.body)),
    (err) => err instanceof BinaryContentError && err.detected === "pdf",
  );
  assert.ok(src.read() <= SNIFF_HEAD_BYTES + 1000, `read ${src.read()} bytes`);
  assert.ok(src.cancelled());
  // A NUL past the head is for the pipeline to find.
  const late = "a,b\n" + "1,2\n".repeat(5000) + "3,\0\n";
  assert.equal(await text(sniffedStream(pieces(enc.encode(late), 500).body)), late);
});

Deno.test("sniffedStream() inflates gzip, and sniffs what it inflates to", async () => {
  const csv = "a,b\n" + "1,2\n".repeat(100_000);
  const gz = new Uint8Array(gzipSync(enc.encode(csv)));
  assert.equal(await text(sniffedStream(pieces(gz, 333).body)), csv);
  assert.equal(await text(sniffedStream(pieces(gz, 333).body, { gzip: true })), csv);
  await assert.rejects(
    text(sniffedStream(pieces(new Uint8Array(gzipSync(enc.encode("%PDF-1.4\n"))), 10).body)),
    (err) => err instanceof BinaryContentError && err.detected === "pdf",
  );
  await assert.rejects(
    text(sniffedStream(pieces(new Uint8Array(gzipSync(gz)), 10).body)),
    (err) => err instanceof BinaryContentError && err.detected === "gzip",
  );
  // Declared gzip, and not gzip; gzip cut short.
  await assert.rejects(
    text(sniffedStream(pieces(enc.encode(csv), 1000).body, { gzip: true })),
    (err) => err instanceof GzipError && err.code === "bad_gzip",
  );
  await assert.rejects(
    text(sniffedStream(pieces(gz.subarray(0, 40), 10).body)),
    (err) => err instanceof GzipError && err.code === "bad_gzip",
  );
});

Deno.test("sniffedStream() stops a gzip bomb at its ratio, having read little", async () => {
  const bomb = gzipBomb();
  let out = 0;
  await assert.rejects(
    (async () => {
      for await (const chunk of sniffedStream(bomb.body, { maxInflateRatio: 200 })) {
        out += chunk.length;
      }
    })(),
    (err) => err instanceof GzipError && err.code === "inflate_ratio" && err.limit === 200,
  );
  assert.ok(out < 8 << 20, `${out} bytes came out`);
  assert.ok(bomb.pulled() < 64 * 1024, `${bomb.pulled()} compressed bytes were read`);
  assert.ok(bomb.cancelled());
  // Under a ratio it does not reach, the whole GiB streams through in bounded pieces.
  const whole = gzipBomb({ decompressedBytes: 64 << 20 });
  let total = 0;
  let largest = 0;
  for await (const chunk of sniffedStream(whole.body, { maxInflateRatio: 100_000 })) {
    total += chunk.length;
    largest = Math.max(largest, chunk.length);
  }
  assert.equal(total, 64 << 20);
  assert.ok(largest <= 5 << 20, `an inflated piece of ${largest} bytes`);
});
