/**
 * The preflight and `PdfDocument.open` on hostile files (tests/hostile/pdf_files.ts): a Flate
 * bomb, disguised or not, fails as `PDF_TOO_COMPLEX` in seconds and bounded memory; the budget
 * and ratio are configurable; outlines and trees over the depth bound or looping through
 * `/First` or `/Kids` fail; a `/Next` loop and self-referencing objects end, the rest kept;
 * arrays nested 100,000 deep fail; an encrypted file is refused; images are not counted; LZW
 * and RunLength are counted as pdf.js decodes them.
 */
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { InputError } from "@troupe/runtime";
import { encryptedPdf, makePdf, sentences } from "../../tests/fixtures/pdfs.ts";
import {
  buildPdf,
  cyclicOutline,
  deepArray,
  deepOutline,
  flateBomb,
  lzwBomb,
  lzwEncode,
  pageTreeLoop,
  selfReferencing,
  streamBody,
} from "../../tests/hostile/pdf_files.ts";
import { PdfDocument, PdfError } from "./pdf.ts";
import { preflight, TooComplex } from "./pdf_preflight.ts";

/** Opens `bytes` and reads everything, or returns the error. */
async function readAll(bytes: Uint8Array) {
  const doc = await PdfDocument.open(bytes);
  try {
    return { pages: await doc.pages(1, doc.pageCount), outline: await doc.outline() };
  } finally {
    await doc.close();
  }
}

async function assertTooComplex(bytes: Uint8Array, pattern: RegExp) {
  await assert.rejects(() => readAll(bytes), (err: Error) => {
    assert.ok(err instanceof PdfError, `a PdfError, not ${err}`);
    assert.ok(err instanceof InputError, "an input error: its job is not retried");
    assert.equal(err.code, "PDF_TOO_COMPLEX");
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test(
  "preflight: a 1 GB Flate bomb fails in seconds, not inflated",
  async () => {
    const bomb = flateBomb({ inflatedMb: 1024 });
    assert.ok(bomb.length < 1.2e6, `the bomb is ${bomb.length} bytes`);
    const started = performance.now();
    await assertTooComplex(bomb, /decompress/);
    const ms = performance.now() - started;
    assert.ok(ms < 20_000, `failed after ${Math.round(ms)} ms`);
    // pdf.js held the whole output (and more): here the stream is only counted. Measured in a
    // process of its own: under `deno test --parallel` this one's RSS is other files' too.
    const script = `
      import { flateBomb } from ${
      JSON.stringify(import.meta.resolve("../../tests/hostile/pdf_files.ts"))
    };
      import { PdfDocument } from ${JSON.stringify(import.meta.resolve("./pdf.ts"))};
      const bomb = flateBomb({ inflatedMb: 1024 });
      const before = Deno.memoryUsage().rss;
      let peak = before;
      const sampling = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
      let code = "none";
      try {
        const doc = await PdfDocument.open(bomb);
        try { await doc.pages(1, doc.pageCount); } finally { await doc.close(); }
      } catch (err) { code = err.code; }
      clearInterval(sampling);
      console.log(JSON.stringify({ code, grewMb: Math.round((peak - before) / 1e6) }));
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0);
    const { code, grewMb } = JSON.parse(new TextDecoder().decode(out.stdout).trim());
    assert.equal(code, "PDF_TOO_COMPLEX");
    assert.ok(grewMb < 300, `RSS grew ${grewMb} MB at its peak`);
  },
);

Deno.test(
  "preflight: a bomb disguised as an image or hex-encoded fails too",
  async () => {
    await assertTooComplex(flateBomb({ inflatedMb: 64, disguise: "image" }), /decompress/);
    await assertTooComplex(flateBomb({ inflatedMb: 64, disguise: "hex" }), /decompress/);
  },
);

Deno.test("preflight: the budget and the ratio are the caller's", async () => {
  const bomb = flateBomb({ inflatedMb: 8 }); // ~8 KB that inflate to 8 MB: ~1000:1
  await assert.rejects(() => preflight(bomb), /more than 200:1/);
  await assert.rejects(
    () => preflight(bomb, { maxInflateRatio: 5000, maxInflateBytes: 4 << 20 }),
    (err: Error) => err instanceof TooComplex && /more than 4194304 bytes/.test(err.message),
  );
  const ok = await preflight(bomb, { maxInflateRatio: 5000, maxInflateBytes: 16 << 20 });
  assert.ok(ok.inflatedBytes > 8 << 20 && ok.inflatedBytes < 9 << 20, `${ok.inflatedBytes}`);
  // Under 1 MB out, a stream is not held to the ratio (small streams compress well).
  await assert.doesNotReject(() => preflight(flateBomb({ inflatedMb: 0 }), { maxInflateRatio: 1 }));
});

Deno.test("preflight: an outline 100,000 deep fails in seconds", async () => {
  const started = performance.now();
  await assertTooComplex(deepOutline(), /over 64 levels deep/);
  const ms = performance.now() - started;
  assert.ok(ms < 30_000, `failed after ${Math.round(ms)} ms`);
});

Deno.test("preflight: the depth bound is exact and configurable", async () => {
  const { outline } = await readAll(deepOutline({ depth: 64 }));
  assert.equal(outline.length, 64);
  assert.deepEqual(outline.at(-1), { title: "Level 64", page: 1, level: 64, top: null });
  await assertTooComplex(deepOutline({ depth: 65 }), /over 64 levels deep/);
  await assert.rejects(() => preflight(deepOutline({ depth: 10 }), { maxDepth: 9 }), TooComplex);
  await assert.doesNotReject(() => preflight(deepOutline({ depth: 10 }), { maxDepth: 10 }));
});

Deno.test("preflight: loops through /First or /Kids fail", async () => {
  await assertTooComplex(cyclicOutline({ via: "First" }), /loops/);
  await assertTooComplex(pageTreeLoop(), /loops/);
});

Deno.test(
  "pdf: a /Next loop and self-references end, the rest kept",
  async () => {
    const looped = await readAll(cyclicOutline({ via: "Next" }));
    assert.deepEqual(looped.outline.map((e) => e.title), ["One", "Two"]);
    assert.deepEqual(looped.pages[0]!.lines.map((l) => l.text), ["Hostile file"]);
    const self = await readAll(selfReferencing());
    assert.deepEqual(self.pages[0]!.lines.map((l) => l.text), ["Hostile file"]);
  },
);

Deno.test("preflight: arrays nested 100,000 deep fail", async () => {
  await assertTooComplex(deepArray(), /nested/);
});

Deno.test("preflight: an encrypted file is refused as ENCRYPTED", async () => {
  assert.equal((await preflight(encryptedPdf())).encrypted, true);
  await assert.rejects(() => readAll(encryptedPdf()), (err: Error) => {
    assert.ok(err instanceof PdfError);
    assert.equal(err.code, "ENCRYPTED");
    return true;
  });
});

Deno.test("preflight: an ordinary PDF passes, its streams counted", async () => {
  const bytes = await makePdf(
    Array.from(
      { length: 30 },
      (_, i) => ({ heading: `Part ${i}`, paragraphs: [sentences(`p${i}`, 8)] }),
    ),
    { outline: [{ title: "Part 0", page: 1, children: [{ title: "Part 1", page: 2 }] }] },
  );
  const { inflatedBytes, encrypted } = await preflight(bytes);
  assert.equal(encrypted, false);
  assert.ok(inflatedBytes > 10_000, `${inflatedBytes} bytes inflated`);
  const { pages, outline } = await readAll(bytes);
  assert.equal(pages.length, 30);
  assert.equal(outline.length, 2);
});

Deno.test(
  "preflight: images are not text: a blank 12 MB one passes",
  async () => {
    // A white 2000 × 2000 RGB scan: ~1000:1, which no content stream may be, but pdf.js's text
    // content never decodes an image.
    const pixels = new Uint8Array(deflateSync(new Uint8Array(2000 * 2000 * 3).fill(255)));
    const enc = new TextEncoder();
    const text = enc.encode(
      "BT /F1 12 Tf 72 720 Td (Scanned) Tj ET q 100 0 0 100 0 0 cm /Im1 Do Q",
    );
    const bytes = buildPdf([
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " +
      "/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
      [`<< /Length ${text.length} >>\nstream\n`, text, "\nendstream"],
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
      [
        "<< /Type /XObject /Subtype /Image /Width 2000 /Height 2000 /ColorSpace /DeviceRGB " +
        `/BitsPerComponent 8 /Filter /FlateDecode /Length ${pixels.length} >>\nstream\n`,
        pixels,
        "\nendstream",
      ],
    ]);
    assert.ok((await preflight(bytes)).inflatedBytes < 1000, "the image was not counted");
    const { pages } = await readAll(bytes);
    assert.deepEqual(pages[0]!.lines.map((l) => l.text), ["Scanned"]);
  },
);

Deno.test(
  "preflight: LZW is counted as pdf.js decodes it; an LZW bomb fails",
  async () => {
    const enc = new TextEncoder();
    const content = enc.encode(
      Array.from(
        { length: 3000 },
        (_, i) => `BT /F1 12 Tf 72 ${700 - (i % 50) * 12} Td (Line ${i}) Tj ET\n`,
      )
        .join(""),
    );
    const bytes = buildPdf([
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R " +
      "/Resources << /Font << /F1 5 0 R >> >> >>",
      streamBody("/Filter /LZWDecode", lzwEncode(content)),
      "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]);
    assert.equal((await preflight(bytes)).inflatedBytes, content.length);
    const { pages } = await readAll(bytes); // pdf.js reads it (the fast path reads no LZW)
    const text = pages[0]!.lines.map((l) => l.text).join(" ");
    assert.match(text, /Line 0 .*Line 2999/);
    await assertTooComplex(lzwBomb({ inflatedMb: 512 }), /decompress/);
  },
);

Deno.test(
  "preflight: RunLength is counted, within the file's budget",
  async () => {
    // 2 bytes a run of 128 spaces: 64:1, under the ratio, so the budget is what stops it.
    const runs = new Uint8Array(2 * 20_000).map((_, i) => i % 2 ? 0x20 : 0x81);
    const bytes = buildPdf([
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
      streamBody("/Filter /RunLengthDecode", Uint8Array.from([...runs, 128])),
    ]);
    assert.equal((await preflight(bytes)).inflatedBytes, 20_000 * 128);
    await assert.rejects(
      () => preflight(bytes, { maxInflateBytes: 2 << 20 }),
      /more than 2097152 bytes/,
    );
  },
);
