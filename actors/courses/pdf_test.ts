/**
 * PDF extraction on generated fixtures: known text on known pages, the outline with physical
 * pages, headings from font size, two columns kept apart, non-Latin text, lines' and
 * destinations' positions on the page, and every broken file failing with its code.
 */
import assert from "node:assert/strict";
import { encryptedPdf, makePdf, sentences } from "../../tests/fixtures/pdfs.ts";
import {
  detectHeadings,
  documentTitle,
  type Line,
  type PageText,
  PdfDocument,
  PdfError,
  titleBlock,
} from "./pdf.ts";

async function open(bytes: Uint8Array) {
  return await PdfDocument.open(bytes);
}

Deno.test("pdf: text on its page, outline with physical pages", async () => {
  const bytes = await makePdf([
    { heading: "Chapter One", paragraphs: [sentences("alpha", 6)] },
    { subheading: "Section 1.1", paragraphs: ["The zebrafish quokka appears on page two only."] },
    { blank: true },
    { heading: "Chapter Two", paragraphs: [sentences("beta", 4)] },
  ], {
    outline: [
      { title: "Chapter One", page: 1, children: [{ title: "Section 1.1", page: 2 }] },
      { title: "Chapter Two", page: 4 },
    ],
  });
  const pdf = await open(bytes);
  try {
    assert.equal(pdf.pageCount, 4);
    assert.deepEqual(await pdf.outline(), [
      { title: "Chapter One", page: 1, level: 1, top: null },
      { title: "Section 1.1", page: 2, level: 2, top: null },
      { title: "Chapter Two", page: 4, level: 1, top: null },
    ]);
    const pages = await pdf.pages(1, 4);
    assert.deepEqual(pages.map((p) => p.page), [1, 2, 3, 4]);
    const text = (n: number) => pages[n - 1]!.lines.map((l) => l.text).join(" ");
    assert.match(text(2), /zebrafish quokka appears on page two/);
    assert.doesNotMatch(text(1), /zebrafish/);
    assert.equal(pages[2]!.lines.length, 0, "the blank page has no text");
    assert.match(text(4), /beta number 4/);
    assert.equal(pages[0]!.lines[0]!.text, "Chapter One");
    assert.ok(pages[0]!.lines[0]!.size > pages[0]!.lines[1]!.size);
    const ranged = await pdf.pages(2, 3);
    assert.deepEqual(ranged.map((p) => p.page), [2, 3]);
  } finally {
    await pdf.close();
  }
});

Deno.test("pdf: headings from font size when there is no outline", async () => {
  const pdf = await open(
    await makePdf([
      { heading: "Introduction", paragraphs: [sentences("intro", 8)] },
      { subheading: "Background", paragraphs: [sentences("bg", 8)] },
      { heading: "Methods", subheading: "Sampling", paragraphs: [sentences("m", 8)] },
    ]),
  );
  try {
    assert.deepEqual(await pdf.outline(), []);
    const headings = detectHeadings(await pdf.pages(1, pdf.pageCount));
    assert.deepEqual(headings.map((h) => [h.title, h.page, h.level]), [
      ["Introduction", 1, 1],
      ["Background", 2, 2],
      ["Methods", 3, 1],
      ["Sampling", 3, 2],
    ]);
  } finally {
    await pdf.close();
  }
});

Deno.test("pdf: two columns are read one after the other", async () => {
  const left = ["Left column starts here.", sentences("left", 5), "Left column ends here."];
  const right = ["Right column starts here.", sentences("right", 5), "Right column ends here."];
  const pdf = await open(await makePdf([{ heading: "Columns", columns: [left, right] }]));
  try {
    const text = (await pdf.pages(1, 1))[0]!.lines.map((l) => l.text).join(" ");
    const at = (s: string) => text.indexOf(s);
    assert.ok(at("Left column starts") < at("Left column ends"));
    assert.ok(at("Left column ends") < at("Right column starts"), text);
    assert.ok(at("Right column starts") < at("Right column ends"));
  } finally {
    await pdf.close();
  }
});

Deno.test("pdf: non-Latin text comes out as written", async () => {
  const pdf = await open(
    await makePdf([{
      heading: "Введение",
      paragraphs: ["Σωκράτης και Πλάτων. Фотосинтез — процесс."],
    }], {
      unicode: true,
    }),
  );
  try {
    const text = (await pdf.pages(1, 1))[0]!.lines.map((l) => l.text).join(" ");
    assert.match(text, /Введение/);
    assert.match(text, /Σωκράτης και Πλάτων/);
    assert.match(text, /Фотосинтез/);
  } finally {
    await pdf.close();
  }
});

Deno.test("pdf: broken files fail with a clear code", async () => {
  const good = await makePdf([{ heading: "x", paragraphs: ["y"] }]);
  const cases: [string, Uint8Array, string][] = [
    ["empty", new Uint8Array(0), "NOT_PDF"],
    ["not a PDF", new TextEncoder().encode("hello, I am a text file"), "NOT_PDF"],
    ["encrypted", encryptedPdf(), "ENCRYPTED"],
    ["truncated", good.slice(0, 40), "CORRUPT"],
    [
      "garbage after the header",
      new TextEncoder().encode("%PDF-1.7\n" + "x".repeat(500)),
      "CORRUPT",
    ],
  ];
  for (const [what, bytes, code] of cases) {
    await assert.rejects(
      async () => {
        const pdf = await PdfDocument.open(bytes);
        try {
          await pdf.pages(1, pdf.pageCount);
        } finally {
          await pdf.close();
        }
      },
      (err: unknown) => {
        assert.ok(err instanceof PdfError, `${what}: ${err}`);
        assert.equal(err.code, code, what);
        return true;
      },
    );
  }
});

Deno.test({
  name: "pdf: lines and destinations carry their position from the page top, on both paths",
}, async () => {
  const bytes = await makePdf([{
    heading: "Chapter One",
    paragraphs: [sentences("intro", 3)],
    sections: [
      { heading: "Alpha", paragraphs: [sentences("alpha", 4)] },
      { heading: "Beta", paragraphs: [sentences("beta", 4)] },
    ],
  }], {
    outline: [{
      title: "Chapter One",
      page: 1,
      top: "heading",
      children: [
        { title: "Alpha", page: 1, top: "heading", kind: "FitH" },
        { title: "Beta", page: 1, top: "heading", kind: "FitR" },
      ],
    }],
  });
  for (const fastText of [true, false]) {
    const pdf = await PdfDocument.open(bytes, { fastText });
    try {
      const [page] = await pdf.pages(1, 1);
      const lines = page!.lines;
      // The heading's baseline is at 740 (user space), 22 points high: its top 30 from the top.
      assert.deepEqual(lines[0], { text: "Chapter One", size: 22, y: 30 }, `fastText ${fastText}`);
      for (let i = 1; i < lines.length; i++) {
        assert.ok(lines[i]!.y > lines[i - 1]!.y, "down the page, line after line");
      }
      const outline = await pdf.outline();
      for (const e of outline) {
        const heading = lines.find((l) => l.text === e.title)!;
        assert.equal(e.top, Math.round((heading.y - 2) * 10) / 10, e.title);
      }
      assert.equal(outline.length, 3);
    } finally {
      await pdf.close();
    }
  }
});

Deno.test("detectHeadings: the title page is the title; numbers give levels; body under", () => {
  const body = (t: string) => ({
    text: `${t} is explained at some length in this sentence.`,
    size: 10,
  });
  // Lines 20 points apart from 72 points down the page.
  const placed = (page: number, lines: Omit<Line, "y">[]): PageText => ({
    page,
    lines: lines.map((l, i) => ({ ...l, y: 72 + 20 * i })),
  });
  const pages: PageText[] = [
    placed(1, [
      { text: "Widgets: a Practical Guide", size: 20 },
      { text: "Jane Q. Public, University of Somewhere", size: 12 },
      { text: "29 September 2006", size: 12 },
      { text: "WidgetsWidgetsWidgetsWidgetsWidgetsWidgets", size: 24 },
    ]),
    placed(2, [
      { text: "1 Gears", size: 16 },
      { text: "1.1 Teeth", size: 13 },
      body("Teeth"),
      body("Pitch"),
      { text: "Preface", size: 16 },
      body("Why"),
    ]),
    // A figure's big label, with no body under it; a line as big with nothing under it.
    placed(3, [
      { text: "GEAR", size: 19 },
      { text: "Fig. 1: a gear", size: 9 },
      body("Ratios"),
      { text: "1.2 Ratios, gears, etc.", size: 13 },
      body("Ratio"),
      { text: "2 Springs", size: 16 },
    ]),
    placed(4, [body("Coil"), { text: "2.1.1 Coil ends", size: 11 }, body("End")]),
  ];
  assert.deepEqual(titleBlock(pages), { page: 1, lines: [0, 1, 2, 3] });
  assert.equal(documentTitle(pages), "Widgets: a Practical Guide");
  assert.deepEqual(detectHeadings(pages).map((h) => [h.title, h.page, h.level, h.top]), [
    // Each starts at its line's top.
    ["1 Gears", 2, 1, 72],
    ["1.1 Teeth", 2, 2, 92],
    ["Preface", 2, 1, 152],
    ["1.2 Ratios, gears, etc.", 3, 2, 132],
    ["2 Springs", 3, 1, 172],
    ["2.1.1 Coil ends", 4, 3, 92],
  ]);
});
