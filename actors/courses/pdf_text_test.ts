/**
 * The fast text path gives the lines pdf.js gives, page for page, on generated PDFs of many
 * kinds (standard and embedded fonts, transforms, rotation, kerning, spacing operators,
 * forms, compressed or not, object and xref streams, incremental updates), and what it does
 * not handle goes to pdf.js: per page (inline images, right-to-left text, a symbolic font)
 * or for the whole file (damaged cross-references). The outline read from the objects equals
 * pdf.js's on every one of them.
 */
import assert from "node:assert/strict";
import fontkit from "@pdf-lib/fontkit";
import {
  degrees,
  PDFDict,
  PDFDocument,
  type PDFFont,
  PDFName,
  type PDFPage,
  StandardFonts,
} from "pdf-lib";
import { DEJAVU, makePdf, sentences } from "../../tests/fixtures/pdfs.ts";
import { PdfDocument } from "./pdf.ts";
import { readOutline } from "./pdf_outline.ts";
import { deflateSync } from "node:zlib";
import { MAX_STREAM_BYTES, PdfFile, PdfName, PdfStream, Unsupported } from "./pdf_objects.ts";

/** Both paths' pages of `bytes`: they must be equal; returns how many pages each path read. */
async function sameAsPdfJs(bytes: Uint8Array) {
  const slow = await PdfDocument.open(bytes, { fastText: false });
  const fast = await PdfDocument.open(bytes);
  try {
    assert.equal(fast.pageCount, slow.pageCount);
    const expected = await slow.pages(1, slow.pageCount);
    const got = await fast.pages(1, fast.pageCount);
    for (let i = 0; i < expected.length; i++) {
      assert.deepEqual(got[i], expected[i], `page ${i + 1}`);
    }
    assert.equal(slow.pagesBy.fast, 0);
    // The outline too, read from the objects where the fast path opened the file.
    const outline = await slow.outlineByPdfJs();
    if (fast.fast) assert.deepEqual(readOutline(fast.fast.file), outline, "outline");
    assert.deepEqual(await fast.outline(), outline);
    return { ...fast.pagesBy, opened: fast.fast !== null, lines: expected };
  } finally {
    await slow.close();
    await fast.close();
  }
}

/** Appends raw content (operators) to a page, its fonts named /F0, /F1... in `fonts` order. */
function raw(
  doc: PDFDocument,
  page: PDFPage,
  fonts: PDFFont[],
  content: string,
  compress = true,
) {
  for (const [i, f] of fonts.entries()) {
    const key = page.node.newFontDictionary(`F${i}`, f.ref);
    content = content.replaceAll(`/F${i} `, `${key} `);
  }
  const stream = compress ? doc.context.flateStream(content) : doc.context.stream(content);
  page.node.addContentStream(doc.context.register(stream));
}

const hex = (font: PDFFont, text: string) => font.encodeText(text).toString();

Deno.test(
  "fast text: the course fixtures read as pdf.js reads them",
  async () => {
    const cases = [
      await makePdf([
        { heading: "Chapter One", paragraphs: [sentences("alpha", 12)] },
        { subheading: "Section 1.1", paragraphs: [sentences("beta", 30)] },
        { blank: true },
        { heading: "Columns", columns: [[sentences("left", 6)], [sentences("right", 6)]] },
      ], { outline: [{ title: "Chapter One", page: 1 }] }),
      await makePdf([{
        heading: "Введение",
        paragraphs: ["Σωκράτης και Πλάτων. Фотосинтез — процесс. Ünïcödé “quotes” – dash…"],
      }], { unicode: true }),
    ];
    for (const bytes of cases) {
      const r = await sameAsPdfJs(bytes);
      assert.ok(r.opened);
      assert.equal(r.pdfjs, 0, "every page on the fast path");
    }
  },
);

Deno.test("fast text: fonts, transforms, spacing and layout", async () => {
  for (const useObjectStreams of [true, false]) {
    const doc = await PDFDocument.create();
    doc.registerFontkit(fontkit);
    const std = await Promise.all(
      [
        StandardFonts.TimesRoman,
        StandardFonts.Helvetica,
        StandardFonts.CourierBold,
        StandardFonts.HelveticaBoldOblique,
      ].map((f) => doc.embedFont(f)),
    );
    const dejavu = await Deno.readFile(DEJAVU);
    const subset = await doc.embedFont(dejavu, { subset: true });
    const full = await doc.embedFont(dejavu);
    const [times, helv, courier, hbo] = std as [PDFFont, PDFFont, PDFFont, PDFFont];

    // 1: every standard font, sizes, accented WinAnsi text, rotated and scaled text.
    let page = doc.addPage([612, 792]);
    let y = 740;
    for (const f of std) {
      page.drawText("Quick brown fox: café, naïve, 1–2 “q” — €5 ‰ ©", {
        x: 50,
        y,
        size: 12,
        font: f,
      });
      y -= 20;
    }
    page.drawText("Rotated thirty degrees", {
      x: 100,
      y: 400,
      size: 14,
      font: helv,
      rotate: degrees(30),
    });
    page.drawText("Rotated ninety", { x: 500, y: 200, size: 12, font: times, rotate: degrees(90) });
    page.drawText("Upside down text", {
      x: 400,
      y: 100,
      size: 12,
      font: times,
      rotate: degrees(180),
    });
    page.drawText("Tiny print", { x: 50, y: 60, size: 4, font: times });
    page.drawText("Off the page", { x: 700, y: 60, size: 12, font: times });

    // 2: raw operators: cm, q/Q, Tm, Td, TD, T*, TL, ', ", Tc, Tw, Tz, Ts, TJ kerning.
    page = doc.addPage([612, 792]);
    raw(
      doc,
      page,
      [times, helv, courier],
      [
        "q 1 0 0 1 20 30 cm BT /F0 12 Tf 50 700 Td (Shifted by cm) Tj ET Q",
        "q 0.5 0 0 0.5 0 0 cm BT /F1 24 Tf 100 1300 Td (Scaled down by half) Tj ET Q",
        "BT /F0 11 Tf 14 TL 50 650 Td (First line) Tj T* (Second line) Tj (third line) ' ET",
        'BT /F0 11 Tf 50 600 Td 2 1 (Word and char spacing via quote) " ET',
        "BT /F1 10 Tf 50 580 Td [(Kern)-30(ing)-250(with)-600(gaps)-2000(far apart)] TJ ET",
        "BT /F1 10 Tf 50 560 Td 3 Tc (Tracked letters) Tj 0 Tc 8 Tw ( wide words here) Tj ET",
        "BT /F1 10 Tf 50 540 Td 150 Tz (Wide scaling) Tj 100 Tz 5 Ts (raised) Tj 0 Ts ET",
        "BT /F2 10 Tf 50 520 Td (Courier) Tj 0 -12 TD (next via TD) Tj T* (and T*) Tj ET",
        "BT /F0 10 Tf 1 0 0 1 300 520 Tm (Tm placed) Tj 2 0 0 2 300 500 Tm (Tm scaled) Tj ET",
        "BT /F0 10 Tf 50 450 Td (Same) Tj /F1 10 Tf (line, other font) Tj /F0 14 Tf (bigger) Tj ET",
        "BT /F0 10 Tf 50 430 Td (Backwards) Tj -80 0 Td (overlap) Tj ET",
        "BT /F0 10 Tf 50 410 Td (Esc\\(aped\\) \\101\\102 and \\\\ slash) Tj ET",
        "/Span << /ActualText (x) >> BDC BT /F0 10 Tf 50 390 Td (Marked content) Tj ET EMC",
        "BT /F0 10 Tf 50 370 Td (soft\\255hyphen) Tj ET",
      ].join("\n"),
      useObjectStreams,
    );

    // 3: embedded fonts (Type0, Identity-H), subset and full, with TJ on glyph ids.
    page = doc.addPage([612, 792]);
    raw(
      doc,
      page,
      [subset, full],
      [
        `BT /F0 12 Tf 50 700 Td ${hex(subset, "Embedded subset: Ελληνικά и кириллица")} Tj ET`,
        `BT /F1 12 Tf 50 680 Td ${hex(full, "Embedded whole font")} Tj ET`,
        `BT /F0 12 Tf 50 660 Td [${hex(subset, "Kerned")} -300 ${hex(subset, "words")}] TJ ET`,
        `BT /F0 12 Tf 50 640 Td 6 Tw ${hex(subset, "word spacing on two-byte codes")} Tj ET`,
      ].join("\n"),
    );
    page.drawText("Drawn with the subset too", { x: 50, y: 600, size: 16, font: subset });

    // 4: a Form XObject (another page drawn twice, scaled) beside the page's own text.
    page = doc.addPage([612, 792]);
    page.drawText("Page with forms", { x: 50, y: 740, size: 18, font: hbo });
    const embedded = await doc.embedPage(doc.getPages()[0]!);
    page.drawPage(embedded, { x: 50, y: 300, xScale: 0.5, yScale: 0.5 });
    page.drawPage(embedded, { x: 320, y: 300, xScale: 0.4, yScale: 0.4 });
    page.drawText("After the forms", { x: 50, y: 100, size: 12, font: times });

    // 5: simple fonts by hand: differences over WinAnsi and MacRoman, differences alone,
    // /Widths with FirstChar, a TJ that starts with a number.
    page = doc.addPage([612, 792]);
    const font = (dict: Record<string, unknown>) =>
      ({
        ref: doc.context.register(doc.context.obj({ Type: "Font", Subtype: "Type1", ...dict })),
      }) as unknown as PDFFont;
    const differences = [65, "fi", "quoteright", "uni00E9", "fl", 97, ".notdef"].map((v) =>
      typeof v === "number" ? v : PDFName.of(v)
    );
    raw(
      doc,
      page,
      [
        font({
          BaseFont: "Helvetica",
          Encoding: { Type: "Encoding", BaseEncoding: "WinAnsiEncoding", Differences: differences },
        }),
        font({
          BaseFont: "Times-Bold",
          Encoding: { BaseEncoding: "MacRomanEncoding", Differences: differences },
        }),
        font({ BaseFont: "Times-Italic", Encoding: { Differences: differences } }),
        font({
          BaseFont: "Custom",
          FirstChar: 65,
          Widths: [500, 600, 700, 800],
          Encoding: "WinAnsiEncoding",
        }),
      ],
      [
        "BT /F0 12 Tf 50 700 Td (ABCD and bcd \\216 \\321) Tj ET",
        "BT /F1 12 Tf 50 680 Td (ABCD and bcd \\216 \\321) Tj ET",
        "BT /F2 12 Tf 50 660 Td (ABCD) Tj ET",
        "BT /F3 12 Tf 50 640 Td (ABCD) Tj ET",
        "BT /F0 12 Tf 50 620 Td (Split) Tj [-250 (by a leading number)] TJ [-3000 (and far)] TJ ET",
      ].join("\n"),
    );

    const bytes = await doc.save({ useObjectStreams });
    const r = await sameAsPdfJs(bytes);
    assert.ok(r.opened, `object streams ${useObjectStreams}`);
    assert.equal(r.pdfjs, 0, "every page on the fast path");
    assert.equal(r.fast, 5);
    const text = r.lines.map((p) => p.lines.map((l) => l.text).join("\n")).join("\n");
    for (
      const s of [
        "Kern",
        "Tm scaled",
        "Embedded subset",
        "After the forms",
        "Rotated",
        "by a leading number",
        "fi’éfl",
      ]
    ) {
      assert.ok(text.includes(s), s);
    }
  }
});

Deno.test("fast text: an incremental update is read at its latest", async () => {
  const base = await makePdf([{ paragraphs: ["Old text of page one."] }, {
    paragraphs: ["Page two."],
  }]);
  const doc = await PDFDocument.load(base);
  const bytes = await doc.save({ useObjectStreams: false });
  const first = doc.getPages()[0]!;
  const pageRef = first.ref;
  const parent = first.node.get(PDFName.of("Parent"))!.toString();
  const fonts = first.node.Resources()!.lookup(PDFName.of("Font"), PDFDict);
  const [fontName, fontRef] = fonts.entries()[0]!;
  const text = new TextDecoder("latin1").decode(bytes);
  const size = Number(text.match(/\/Size (\d+)/)![1]);
  const prev = Number(text.slice(text.lastIndexOf("startxref") + 9).trim().split(/\s/)[0]);
  const content = `BT ${fontName} 12 Tf 72 700 Td (New text of page one.) Tj ET`;
  const pageObj = `${pageRef.objectNumber} 0 obj\n<< /Type /Page /Parent ${parent} ` +
    `/MediaBox [0 0 612 792] /Resources << /Font << ${fontName} ${fontRef} >> >> ` +
    `/Contents ${size} 0 R >>\nendobj\n`;
  const streamObj =
    `${size} 0 obj\n<< /Length ${content.length} >>\nstream\n${content}\nendstream\nendobj\n`;
  let tail = "\n";
  const at1 = bytes.length + tail.length;
  tail += pageObj;
  const at2 = bytes.length + tail.length;
  tail += streamObj;
  const xref = bytes.length + tail.length;
  const entry = (n: number) => `${String(n).padStart(10, "0")} 00000 n \n`;
  tail += `xref\n${pageRef.objectNumber} 1\n${entry(at1)}${size} 1\n${entry(at2)}`;
  tail += `trailer\n<< /Size ${size + 1} /Root ${
    text.match(/\/Root (\d+ 0 R)/)![1]
  } /Prev ${prev} >>\nstartxref\n${xref}\n%%EOF\n`;
  const updated = new Uint8Array([...bytes, ...new TextEncoder().encode(tail)]);
  const r = await sameAsPdfJs(updated);
  assert.ok(r.opened);
  assert.equal(r.pdfjs, 0);
  assert.equal(r.lines[0]!.lines[0]!.text, "New text of page one.");
  assert.equal(r.lines[1]!.lines[0]!.text, "Page two.");
});

Deno.test("fast text: what it does not handle goes to pdf.js", async () => {
  const doc = await PDFDocument.create();
  doc.registerFontkit(fontkit);
  const times = await doc.embedFont(StandardFonts.TimesRoman);
  const symbol = await doc.embedFont(StandardFonts.Symbol);
  const dejavu = await doc.embedFont(await Deno.readFile(DEJAVU), { subset: true });
  const plain = () => doc.addPage([612, 792]);
  plain().drawText("An ordinary page", { x: 50, y: 700, size: 12, font: times });
  // An inline image.
  raw(
    doc,
    plain(),
    [times],
    "BT /F0 12 Tf 50 700 Td (Before the image) Tj ET\nq 10 0 0 10 50 600 cm BI /W 1 /H 1 /CS /G /BPC 8 ID \x80 EI Q\nBT /F0 12 Tf 50 500 Td (After the image) Tj ET",
  );
  // Right-to-left text.
  plain().drawText("שלום עולם and more", { x: 50, y: 700, size: 12, font: dejavu });
  // A symbolic standard font.
  plain().drawText("αβγ", { x: 50, y: 700, size: 12, font: symbol });
  plain().drawText("Another ordinary page", { x: 50, y: 700, size: 12, font: times });
  const bytes = await doc.save();
  const r = await sameAsPdfJs(bytes);
  assert.ok(r.opened);
  assert.deepEqual({ fast: r.fast, pdfjs: r.pdfjs }, { fast: 2, pdfjs: 3 });
  assert.match(r.lines[1]!.lines.map((l) => l.text).join(" "), /Before the image.*After the image/);

  // Cross-reference offsets that no longer point at their objects: the whole file goes to
  // pdf.js, which rebuilds the table.
  const good = await makePdf([{ paragraphs: ["Shifted objects still read."] }]);
  const head = new TextDecoder("latin1").decode(good.subarray(0, 20)).indexOf("\n") + 1;
  const shifted = new Uint8Array([
    ...good.subarray(0, head),
    ...new TextEncoder().encode("%" + "x".repeat(40) + "\n"),
    ...good.subarray(head),
  ]);
  const s = await sameAsPdfJs(shifted);
  assert.equal(s.opened, false);
  assert.equal(s.pdfjs, 1);
  assert.equal(s.lines[0]!.lines[0]!.text, "Shifted objects still read.");
});

Deno.test("fast text: a stream that inflates past the bound is left to pdf.js", async () => {
  const file = new PdfFile(await makePdf([{ heading: "One page" }]));
  const flate = (n: number) =>
    new PdfStream(new Map([["Filter", PdfName.of("FlateDecode")]]), deflateSync(new Uint8Array(n)));
  assert.equal(file.decode(flate(1000)).length, 1000);
  assert.throws(() => file.decode(flate(MAX_STREAM_BYTES + 1)), Unsupported);
});
