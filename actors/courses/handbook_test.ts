import assert from "node:assert/strict";
import { PdfWriter } from "../documents/pdf_writer.ts";
import { assertScriptsDrawn, pdfText, SCRIPT_WORDS } from "../documents/testing.ts";
import { courseHandbook, hasOwnNumber, numbered } from "./handbook.ts";
import { PdfDocument } from "./pdf.ts";
import type { Lesson, Module } from "./pipeline.ts";

const SAMPLE = Object.values(SCRIPT_WORDS).flat().join(" ");

function lesson(title: string, summary: string, keyPoints: string[] = []): Lesson {
  return {
    title,
    summary,
    keyPoints,
    pages: [1, 2],
    fileName: "notes.pdf",
    quiz: [{
      question: "Pick the letter θ.",
      choices: ["alpha", "theta", "γ", "中文"],
      answer: 1,
      explanation: "",
      page: 2,
    }],
  };
}

Deno.test("numbered() keeps a title's own number and adds one where there is none", () => {
  for (
    const own of [
      "1 Introduction and preliminaries",
      "2.3 Arrays",
      "10. Statistical models",
      "A.1 Notes",
      "Appendix B Invoking R",
      "Chapter 4 Lists",
      "IV. Graphics",
    ]
  ) {
    assert.ok(hasOwnNumber(own), own);
    assert.equal(numbered("2.", own), own);
  }
  for (const plain of ["Preface", "A sample session", "Introduction", "3D graphics", "Index"]) {
    assert.ok(!hasOwnNumber(plain), plain);
  }
  assert.equal(numbered("2.", "Preface"), "2. Preface");
  assert.equal(numbered("2.1", "Getting started"), "2.1 Getting started");
});

Deno.test("handbook: every script is printed, with glyphs", async () => {
  const modules: Module[] = [{
    title: "Écritures — Σκριπτ, Письмо, 文字, الكتابة",
    summary: "Latin, Greek, Cyrillic, CJK and Arabic in one handbook.",
    lessons: [
      lesson("Samples", `The samples are ${SAMPLE} and nothing else.`, [
        "θ and γ are Greek; x ≤ y and −1 are math.",
        "العربية تكتب من اليمين إلى اليسار",
      ]),
    ],
  }];
  const pdf = await courseHandbook({
    title: "Handbook ünïcödé 中文 Ελληνικά",
    sources: [{ fileName: "notes.pdf", pageCount: 2 }],
    modules,
  });
  const text = await pdfText(pdf);
  for (
    const s of [
      "Handbook ünïcödé 中文 Ελληνικά",
      "Écritures — Σκριπτ, Письмо, 文字",
      "x ≤ y and −1",
      "العربية تكتب من اليمين إلى اليسار", // poppler prints right-to-left text in logical order
      ...SAMPLE.split(" "),
    ]
  ) {
    assert.ok(text.includes(s), `pdftotext finds "${s}"`);
  }
  assert.ok(!text.includes("?"), "no character was replaced by ?");
  await assertScriptsDrawn(pdf);
});

Deno.test(
  "handbook: a title with its own number is not numbered again",
  async () => {
    const pdf = await courseHandbook({
      title: "An Introduction to R",
      sources: [],
      modules: [
        { title: "Preface", summary: "", lessons: [lesson("Acknowledgements", "Thanks.")] },
        {
          title: "1 Introduction and preliminaries",
          summary: "",
          lessons: [lesson("1.1 The R environment", "R is."), lesson("Related software", "S.")],
        },
      ],
    });
    const text = await pdfText(pdf);
    assert.ok(text.includes("1. Preface"), "a title without a number gets one");
    assert.ok(text.includes("1.1 Acknowledgements"));
    assert.ok(text.includes("1 Introduction and preliminaries"));
    assert.ok(!/\d\.\s+1 Introduction/.test(text), "no second number before the chapter's own");
    assert.ok(text.includes("1.1 The R environment"));
    assert.ok(!/2\.1\s+1\.1 The R environment/.test(text));
    assert.ok(text.includes("2.2 Related software"));
  },
);

/** A source PDF whose text has θ, γ, ≤ and −, read by both extraction paths. */
Deno.test("handbook: θ γ ≤ − survive extraction and writing", async () => {
  const src = await PdfWriter.create({ title: "Source" });
  await src.newPage();
  await src.para("Models: the link function θ maps the mean; γ is the dispersion.", { size: 11 });
  await src.para("Quantiles: the smallest x such that P(X ≤ x) > q, for x from −π to π.", {
    size: 11,
  });
  const bytes = await src.save();
  for (const fastText of [true, false]) {
    const doc = await PdfDocument.open(bytes, { fastText });
    const [page] = await doc.pages(1, 1);
    await doc.close();
    const lines = page!.lines.map((l) => l.text);
    const extracted = lines.join(" ");
    for (const ch of ["θ", "γ", "≤", "−", "π"]) {
      assert.ok(extracted.includes(ch), `extraction (fast path ${fastText}) keeps ${ch}`);
    }
    const pdf = await courseHandbook({
      title: "Models",
      sources: [{ fileName: "source.pdf", pageCount: 1 }],
      modules: [{ title: "Models", summary: "", lessons: [lesson("Models", extracted, lines)] }],
    });
    const text = await pdfText(pdf);
    for (const line of lines) assert.ok(text.includes(line), `the handbook prints "${line}"`);
  }
});

const R_INTRO = "/work/.corpus/x/usr/share/R/doc/manual/R-intro.pdf";
const hasRIntro = await Deno.stat(R_INTRO).then(() => true, () => false);

Deno.test({
  name: "handbook: the R manual's θ γ ≤ − (Type 1 math fonts) reach the handbook",
  ignore: !hasRIntro,
}, async () => {
  const doc = await PdfDocument.open(await Deno.readFile(R_INTRO));
  const pages = [
    ...await doc.pages(42, 42),
    ...await doc.pages(67, 67),
    ...await doc.pages(70, 70),
  ];
  await doc.close();
  const lines = pages.flatMap((p) => p.lines.map((l) => l.text)).filter((l) => /[θγ≤−]/.test(l));
  const all = lines.join(" ");
  for (const ch of ["θ", "γ", "≤", "−"]) assert.ok(all.includes(ch), `extraction keeps ${ch}`);
  const pdf = await courseHandbook({
    title: "An Introduction to R",
    sources: [{ fileName: "R-intro.pdf", pageCount: 105 }],
    modules: [{ title: "Statistics", summary: "", lessons: [lesson("Models", all, lines)] }],
  });
  const text = (await pdfText(pdf)).replace(/\s+/g, " ");
  for (const ch of ["θ", "γ", "≤", "−"]) assert.ok(text.includes(ch), `the handbook prints ${ch}`);
});
