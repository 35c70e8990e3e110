import assert from "node:assert/strict";
import { TroupeError, ValidationError } from "@troupe/runtime";
import { BOUNDARY, endlessBody, hugeFieldForm, part } from "../tests/hostile/http_attacks.ts";
import { statusOf } from "./errors.ts";
import { fieldText, multipartBoundary, readMultipart } from "./multipart.ts";

/** Serializes a FormData the way a client would, as bytes. */
async function encode(form: FormData): Promise<{ bytes: Uint8Array; boundary: string }> {
  const req = new Request("http://x/", { method: "POST", body: form });
  const boundary = multipartBoundary(req.headers.get("content-type") ?? undefined);
  assert.ok(boundary);
  return { bytes: new Uint8Array(await req.arrayBuffer()), boundary };
}

/** Re-chunks bytes in pieces of the given sizes, cycling. */
function chunked(bytes: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  let off = 0;
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.byteLength) return c.close();
      const n = sizes[i++ % sizes.length]!;
      c.enqueue(bytes.slice(off, off + n));
      off += n;
    },
  });
}

async function collect(body: ReadableStream<Uint8Array>, boundary: string) {
  const out: { name: string; filename: string | null; type: string | null; data: Uint8Array }[] =
    [];
  for await (const part of readMultipart(body, boundary)) {
    out.push({
      name: part.name,
      filename: part.filename,
      type: part.contentType,
      data: new Uint8Array(await new Response(part.body).arrayBuffer()),
    });
  }
  return out;
}

Deno.test("multipart: fields and files arrive intact whatever the chunking", async () => {
  const big = new Uint8Array(3_000_000).map((_, i) => (i * 7919) % 251);
  // Content that looks like the start of a boundary must not confuse the reader.
  const tricky = new TextEncoder().encode("a\r\n--not-the-boundary\r\n-\r\n--");
  const form = new FormData();
  form.append("title", "Über course");
  form.append("files", new File([big], "big.bin", { type: "application/octet-stream" }));
  form.append("files", new File([tricky], "tricky.txt", { type: "text/plain" }));
  form.append("files", new File([], "empty.csv", { type: "text/csv" }));
  const { bytes, boundary } = await encode(form);
  for (const sizes of [[bytes.byteLength], [65_536], [70_001, 13], [997, 3]]) {
    const parts = await collect(chunked(bytes, sizes), boundary);
    assert.deepEqual(parts.map((p) => [p.name, p.filename, p.type]), [
      ["title", null, null],
      ["files", "big.bin", "application/octet-stream"],
      ["files", "tricky.txt", "text/plain"],
      ["files", "empty.csv", "text/csv"],
    ]);
    assert.equal(new TextDecoder().decode(parts[0]!.data), "Über course");
    assert.deepEqual(parts[1]!.data, big);
    assert.deepEqual(parts[2]!.data, tricky);
    assert.equal(parts[3]!.data.byteLength, 0);
  }
  // Byte-by-byte pieces on a small body.
  const small = new FormData();
  small.append("f", new File([tricky], "t.txt"));
  const enc = await encode(small);
  const parts = await collect(chunked(enc.bytes, [1, 2, 3]), enc.boundary);
  assert.deepEqual(parts[0]!.data, tricky);
});

Deno.test("multipart: content made of the delimiter's own bytes survives any chunking", async () => {
  // Files drawn from the delimiter's bytes hold many near-misses (its first bytes, its last
  // bytes, all of it but one byte) at every offset, so chunk ends fall inside them: the search
  // and the tail kept between chunks are both exercised. A deterministic generator keeps a
  // failure reproducible.
  const boundary = "----TroupeBoundary7MA4YWxkTrZu0gW";
  const delimiter = `\r\n--${boundary}`;
  const alphabet = [...new Set(delimiter)];
  let seed = 12345;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const files: string[] = [];
  for (let f = 0; f < 40; f++) {
    let text = "";
    while (text.length < 2000) {
      const pick = rand(4);
      if (pick === 0) text += delimiter.slice(0, 1 + rand(delimiter.length - 1));
      else if (pick === 1) text += delimiter.slice(1 + rand(delimiter.length - 1));
      else if (pick === 2) {
        const cut = rand(delimiter.length);
        text += delimiter.slice(0, cut) + "x" + delimiter.slice(cut + 1);
      } else text += alphabet[rand(alphabet.length)];
    }
    // The generator may assemble the whole delimiter by chance; such a file cannot be sent.
    files.push(text.replaceAll(delimiter, "x"));
  }
  const body =
    files.map((t, i) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="${i}.txt"\r\n\r\n${t}\r\n`
    ).join("") + `--${boundary}--\r\n`;
  const bytes = new TextEncoder().encode(body);
  for (const sizes of [[1], [7, 3, 64], [33, 34, 35], [4096], [bytes.byteLength]]) {
    const parts = await collect(chunked(bytes, sizes), boundary);
    assert.deepEqual(parts.map((p) => new TextDecoder().decode(p.data)), files, `${sizes}`);
  }
});

Deno.test("multipart: a part may be skipped by cancelling its body", async () => {
  const form = new FormData();
  form.append("skip", new File([new Uint8Array(200_000)], "a.bin"));
  form.append("keep", "yes");
  const { bytes, boundary } = await encode(form);
  const seen: string[] = [];
  for await (const part of readMultipart(chunked(bytes, [4096]), boundary)) {
    if (part.name === "skip") await part.body.cancel();
    else seen.push(await new Response(part.body).text());
  }
  assert.deepEqual(seen, ["yes"]);
});

Deno.test("multipart: malformed bodies are validation errors", async () => {
  const form = new FormData();
  form.append("f", new File(["abc"], "a.txt"));
  const { bytes, boundary } = await encode(form);
  const truncated = bytes.slice(0, bytes.byteLength - 20);
  await assert.rejects(() => collect(chunked(truncated, [100]), boundary), ValidationError);
  await assert.rejects(
    () => collect(chunked(new TextEncoder().encode("no boundary here"), [5]), boundary),
    ValidationError,
  );
  assert.equal(multipartBoundary("application/json"), null);
  assert.equal(multipartBoundary('multipart/form-data; boundary="abc def"'), "abc def");
});

/** The 413 of a form limit, with its details. */
function formLimit(details: Record<string, unknown>) {
  return (err: unknown) => {
    assert.ok(err instanceof TroupeError, String(err));
    assert.equal(statusOf(err), 413);
    assert.equal(err.code, "PAYLOAD_TOO_LARGE");
    assert.deepEqual(err.details, details);
    return true;
  };
}

Deno.test("multipart: a field that never ends is refused once past its limit, read no further", async () => {
  for (const skip of [false, true]) {
    const form = hugeFieldForm({ field: "name", before: part("format", "csv") });
    await assert.rejects(async () => {
      for await (const p of readMultipart(form.body, BOUNDARY, { maxFieldBytes: 100_000 })) {
        if (skip || p.name === "format") await p.body.cancel();
        else await fieldText(p);
      }
    }, formLimit({ field: "name", limitBytes: 100_000 }));
    // The limit and a chunk or two in flight, not the body (which has no end).
    assert.ok(form.pulled() < 100_000 + 3 * 65_536, `pulled ${form.pulled()} bytes`);
  }
});

Deno.test("multipart: files are not field-limited; too many parts and oversize part headers are 413s", async () => {
  const file = new Uint8Array(300_000).fill(65);
  const form = new FormData();
  form.append("file", new File([file], "a.csv"));
  const { bytes, boundary } = await encode(form);
  const parts = await collect(chunked(bytes, [65_536]), boundary);
  assert.equal(parts[0]!.data.byteLength, 300_000);

  const many = endlessBody({ head: "", filler: part("f", "x") });
  await assert.rejects(async () => {
    for await (const p of readMultipart(many.body, BOUNDARY, { maxParts: 10 })) {
      await p.body.cancel();
    }
  }, formLimit({ maxParts: 10 }));
  assert.ok(many.pulled() < 200_000, `pulled ${many.pulled()} bytes`);

  const longHeaders = endlessBody({ head: `--${BOUNDARY}\r\nX-Pad: `, filler: "y" });
  await assert.rejects(async () => {
    for await (const p of readMultipart(longHeaders.body, BOUNDARY, { maxHeaderBytes: 1024 })) {
      await p.body.cancel();
    }
  }, formLimit({ part: 1, limitBytes: 1024 }));
  assert.ok(longHeaders.pulled() < 200_000, `pulled ${longHeaders.pulled()} bytes`);
});
