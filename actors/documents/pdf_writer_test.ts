import assert from "node:assert/strict";
import { rgb } from "pdf-lib";
import { visualRuns } from "./bidi.ts";
import { needsNoShaping } from "./fontkit.ts";
import { fontRuns, loadFace, REPLACEMENT } from "./fonts.ts";
import { PdfWriter } from "./pdf_writer.ts";
import { difference, inkOf, pdfText, renderPage } from "./testing.ts";

Deno.test("fontRuns() picks the first font that has each run, Arabic from Noto", async () => {
  const runs = await fontRuns("Ωmega ≤ 中文, 日本 العربية ١٢ x", "regular");
  assert.deepEqual(runs, [
    { text: "Ωmega ≤ ", family: "DejaVu Sans" },
    { text: "中文", family: "Droid Sans Fallback" },
    { text: ", ", family: "DejaVu Sans" }, // Droid Sans Fallback has no ASCII
    { text: "日本 ", family: "Droid Sans Fallback" },
    { text: "العربية ١٢ ", family: "Noto Sans Arabic" },
    { text: "x", family: "DejaVu Sans" },
  ]);
  // A character no shipped font has: the replacement character, not a .notdef box.
  assert.deepEqual(await fontRuns("a\u{1fae0}b", "bold"), [
    { text: `a${REPLACEMENT}b`, family: "DejaVu Sans" },
  ]);
});

Deno.test("visualRuns() orders right-to-left runs, keeps numbers left to right, mirrors", () => {
  const tag = "f";
  // Logical: "abc " then Arabic "ابت (ث) ١٢" then " def".
  const ltr = visualRuns([{ text: "abc ابت (ث) ١٢ def", tag }], "ltr");
  // The space after "(ث)" is between right-to-left characters: it joins their run.
  assert.deepEqual(ltr.map((r) => [r.text, r.rtl]), [
    ["abc ", false],
    ["١٢", false],
    ["ابت )ث( ", true],
    [" def", false],
  ]);
  const rtl = visualRuns([{ text: "مرحبا abc", tag }], "rtl");
  assert.deepEqual(rtl.map((r) => [r.text, r.rtl]), [["abc", false], ["مرحبا ", true]]);
  assert.deepEqual(visualRuns([{ text: "plain", tag }], "ltr"), [
    { text: "plain", rtl: false, tag },
  ]);
});

/** One character (or word) per script; two of each, to tell glyphs from .notdef boxes. */
const SCRIPTS: [string, string, string][] = [
  ["latin", "ç", "ŵ"],
  ["greek", "θ", "γ"],
  ["math", "≤", "∑"],
  ["cyrillic", "Ж", "я"],
  ["cjk", "中", "漢"],
  ["kana", "の", "テ"],
  ["hangul", "한", "국"],
  ["arabic", "ع", "ب"],
];

Deno.test("PdfWriter: every script is drawn with real glyphs", async () => {
  const w = await PdfWriter.create({ title: "Scripts θ 中文 العربية" });
  const page = await w.newPage();
  const H = w.pageSize[1];
  const size = 30;
  const box = (x: number, baseline: number, width: number) => ({
    xMin: x,
    xMax: x + width,
    yMin: H - baseline - size,
    yMax: H - baseline + size * 0.35,
  });
  type Ink = ReturnType<typeof inkOf>;
  const boxes: { label: string; a: ReturnType<typeof box>; b: ReturnType<typeof box> }[] = [];
  const rows = [...SCRIPTS, ["composite", "ŵ", "w"] as [string, string, string]];
  for (const [i, [script, a, b]] of rows.entries()) {
    const baseline = H - 70 - i * 60;
    for (const [j, bold] of [false, true].entries()) {
      const x = 60 + j * 260;
      const wa = await w.draw(a, { x, y: baseline, size, bold });
      const wb = await w.draw(b, { x: x + 120, y: baseline, size, bold });
      boxes.push({
        label: `${script}${bold ? " bold" : ""}`,
        a: box(x, baseline, wa),
        b: box(x + 120, baseline, wb),
      });
    }
  }
  // The .notdef box for reference: a CJK character drawn with DejaVu Sans, which lacks it.
  const dejavu = await w.doc.embedFont((await loadFace("DejaVu Sans", "regular")).bytes);
  const notdefBaseline = H - 70 - rows.length * 60;
  page.drawText("中", { x: 60, y: notdefBaseline, size, font: dejavu, color: rgb(0, 0, 0) });
  const notdefBox = box(60, notdefBaseline, dejavu.widthOfTextAtSize("中", size));
  const pdf = await w.save();

  const raster = await renderPage(pdf, 1);
  const notdef = inkOf(raster, notdefBox);
  assert.ok(notdef.count > 50, "the reference .notdef box has ink");
  for (const { label, a, b } of boxes) {
    const [inkA, inkB] = [inkOf(raster, a), inkOf(raster, b)] as [Ink, Ink];
    assert.ok(inkA.count > 30 && inkB.count > 30, `${label}: both have ink`);
    if (label.startsWith("composite")) {
      // ŵ is a composite glyph (w and a circumflex): a subset must keep both components.
      assert.ok(inkA.count > inkB.count * 1.08, `${label}: ŵ has its accent`);
      continue;
    }
    assert.ok(difference(inkA, inkB) > 0.25, `${label}: two characters, two shapes`);
    assert.ok(difference(inkA, notdef) > 0.25, `${label}: not the .notdef box`);
  }
  const text = await pdfText(pdf);
  for (const [script, a, b] of SCRIPTS) {
    assert.ok(text.includes(a) && text.includes(b), `${script}: pdftotext finds ${a} ${b}`);
  }
});

Deno.test("PdfWriter: fonts are embedded as subsets", async () => {
  const w = await PdfWriter.create({ title: "Subset" });
  await w.newPage();
  await w.para("中文 and العربية and Ωmega", { size: 12 });
  const pdf = await w.save();
  // Droid Sans Fallback alone is 3.4 MB: a few glyphs of it are a few kilobytes.
  assert.ok(pdf.length < 60_000, `${pdf.length} bytes`);
  const text = await pdfText(pdf);
  assert.ok(text.includes("中文") && text.includes("العربية") && text.includes("Ωmega"), text);
});

Deno.test("PdfWriter: wrapping breaks CJK anywhere and long words", async () => {
  const w = await PdfWriter.create({ title: "Wrap" });
  const width = 120;
  const cjk = await w.wrap("中文段落".repeat(20), width, { size: 10 });
  assert.ok(cjk.length > 3, `${cjk.length} lines`);
  assert.equal(cjk.join(""), "中文段落".repeat(20));
  const long = await w.wrap(`short ${"x".repeat(80)} end`, width, { size: 10 });
  assert.equal(long[0], "short");
  assert.equal(long.join("").replace(/ /g, ""), `short${"x".repeat(80)}end`);
  for (const line of [...cjk, ...long]) {
    assert.ok(await w.measure(line, { size: 10 }) <= width, `"${line}" fits`);
  }
  const alphabet = "abcdefghijklmnopqrstuvwxyz";
  const clipped = await w.clip(alphabet, 60, { size: 10 });
  assert.match(clipped, /^abc[a-z]*…$/);
  assert.ok(await w.measure(clipped, { size: 10 }) <= 60);
  const oneMore = alphabet.slice(0, clipped.length) + "…";
  assert.ok(await w.measure(oneMore, { size: 10 }) > 60, "as long as fits");
  assert.equal(await w.clip("short", 60), "short");
});

Deno.test("needsNoShaping(): only scripts whose glyphs are their characters skip shaping", () => {
  for (const plain of ["Ωmega ≤ x", "Фотосинтез", "中文 日本語 한국어", "déjà vu, 1-2"]) {
    assert.ok(needsNoShaping(plain), plain);
  }
  for (const shaped of ["مرحبا", "e\u0301", "soft\u00adhyphen", "क्षि", "a\u200db"]) {
    assert.ok(!needsNoShaping(shaped), shaped);
  }
});

Deno.test("PdfWriter: default-ignorable characters take no room", async () => {
  const w = await PdfWriter.create({ title: "Ignorable" });
  assert.equal(await w.measure("soft\u00adhyphen"), await w.measure("softhyphen"));
});
