/**
 * Lessons cut at their outline positions: entries on one page share it by position, a
 * chapter heading followed at once by its first section makes no lesson of its own, a chapter
 * with text of its own opens with an introduction, sections with too little text join a
 * neighbour, entries without a top start at their title's line, and no lesson is empty or
 * has another's text. On generated PDFs read by the real extractor.
 */
import assert from "node:assert/strict";
import { type FixtureOutline, makePdf, sentences } from "../../tests/fixtures/pdfs.ts";
import { detectHeadings, type OutlineEntry, type PageText, PdfDocument } from "./pdf.ts";
import {
  headingLines,
  MIN_LESSON_WORDS,
  passagesBetween,
  type PlannedModule,
  structure,
} from "./lessons.ts";

async function read(
  pages: Parameters<typeof makePdf>[0],
  outline?: FixtureOutline[],
): Promise<{ pages: PageText[]; outline: OutlineEntry[] }> {
  const pdf = await PdfDocument.open(await makePdf(pages, outline ? { outline } : {}));
  try {
    return { pages: await pdf.pages(1, pdf.pageCount), outline: await pdf.outline() };
  } finally {
    await pdf.close();
  }
}

/** Each lesson's title, pages and text. */
function texts(pages: PageText[], modules: PlannedModule[]) {
  return modules.flatMap((m) =>
    m.lessons.map((l) => ({
      module: m.title,
      title: l.title,
      pages: [l.from, l.to],
      text: passagesBetween(pages, l.start, l.end).map((p) => p.text).join(" "),
    }))
  );
}

/** Every lesson has text, and none has another's. */
function distinct(lessons: { text: string }[]) {
  for (const [i, l] of lessons.entries()) {
    assert.ok(l.text.length > 0, `lesson ${i} has text`);
    for (const other of lessons.slice(i + 1)) assert.notEqual(l.text, other.text);
  }
}

Deno.test("lessons: sections on one page each get their own text", async () => {
  const { pages, outline } = await read([
    {
      heading: "Chapter One",
      sections: [
        { heading: "Alpha", paragraphs: [sentences("alpha", 4)] },
        { heading: "Beta", paragraphs: [sentences("beta", 4)] },
      ],
    },
    {
      paragraphs: [sentences("betamore", 3)],
      sections: [{ heading: "Gamma", paragraphs: [sentences("gamma", 4)] }],
    },
  ], [{
    title: "Chapter One",
    page: 1,
    top: "heading",
    children: [
      { title: "Alpha", page: 1, top: "heading" },
      { title: "Beta", page: 1, top: "heading", kind: "FitH" },
      { title: "Gamma", page: 2, top: "heading", kind: "FitR" },
    ],
  }]);
  const lessons = texts(pages, structure(outline, pages, "a.pdf"));
  // The chapter's heading alone is too little for a lesson: it opens the first section's.
  assert.deepEqual(lessons.map((l) => [l.title, l.pages]), [
    ["Alpha", [1, 1]],
    ["Beta", [1, 2]],
    ["Gamma", [2, 2]],
  ]);
  const [alpha, beta, gamma] = lessons;
  assert.match(alpha!.text, /^Chapter One Alpha The data of alpha number 1/);
  assert.doesNotMatch(alpha!.text, /beta/);
  assert.match(beta!.text, /^Beta .*beta number 4.*betamore number 3 [^.]*\.$/);
  assert.doesNotMatch(beta!.text, /gamma|alpha/);
  assert.match(gamma!.text, /^Gamma .*gamma number 4 [^.]*\.$/);
  distinct(lessons);
});

Deno.test(
  "lessons: without a top, an entry starts at its title's line",
  async () => {
    const { pages, outline } = await read([{
      heading: "Part A",
      paragraphs: [sentences("intro", 5)],
      sections: [
        { heading: "1.1 First", paragraphs: [sentences("first", 4)] },
        { heading: "1.2 Second", paragraphs: [sentences("second", 4)] },
      ],
    }], [{
      title: "Part A",
      page: 1,
      children: [
        // The outline's titles lack the numbering the page shows.
        { title: "First", page: 1 },
        { title: "Second", page: 1, kind: "Fit" },
      ],
    }]);
    assert.ok(outline.every((e) => e.top === null));
    const lessons = texts(pages, structure(outline, pages, "a.pdf"));
    // The chapter has text of its own: an introduction lesson.
    assert.deepEqual(lessons.map((l) => l.title), ["Part A", "First", "Second"]);
    assert.match(lessons[0]!.text, /^Part A .*intro number 5 [^.]*\.$/);
    assert.match(lessons[1]!.text, /^1\.1 First .*first number 4 [^.]*\.$/);
    assert.match(lessons[2]!.text, /^1\.2 Second .*second number 4 [^.]*\.$/);
    distinct(lessons);
    // For the writer, without the heading lines (numbered or not) that would start a sentence.
    const headings = headingLines(outline.map((e) => e.title));
    const [, first] = structure(outline, pages, "a.pdf")[0]!.lessons;
    const prose = passagesBetween(pages, first!.start, first!.end, headings);
    assert.match(prose[0]!.text, /^The data of first number 1 /);
    assert.ok(!headings("The data of first number 1 shows how"));
    assert.ok(headings("Chapter 2: Part A") && headings("A.1 First") && !headings("Firsts"));
  },
);

Deno.test(
  "lessons: a section with too little text joins a neighbour, titled both",
  async () => {
    const tiny = "Only a few words here.";
    const { pages, outline } = await read([{
      heading: "Chapter",
      sections: [
        { heading: "Short", paragraphs: [tiny] },
        { heading: "Long", paragraphs: [sentences("long", 5)] },
        { heading: "Tail", paragraphs: [tiny] },
      ],
    }, {
      heading: "Empty chapter",
    }, {
      heading: "Small chapter",
      paragraphs: [tiny],
    }], [
      {
        title: "Chapter",
        page: 1,
        top: "heading",
        children: [
          { title: "Short", page: 1, top: "heading" },
          { title: "Long", page: 1, top: "heading" },
          { title: "Tail", page: 1, top: "heading" },
        ],
      },
      // The same place twice: the first gets no text at all.
      { title: "Duplicate entry", page: 2, top: 20 },
      { title: "Empty chapter", page: 2, top: 20 },
      { title: "Small chapter", page: 3, top: "heading" },
    ]);
    const modules = structure(outline, pages, "a.pdf");
    const lessons = texts(pages, modules);
    // A chapter with nothing but its heading makes no lesson.
    assert.deepEqual(lessons.map((l) => [l.module, l.title]), [
      ["Chapter", "Short / Long / Tail"],
      ["Small chapter", "Small chapter"],
    ]);
    assert.ok(
      lessons[0]!.text.split(" ").length >= MIN_LESSON_WORDS,
      "the joined lesson has the text of all three",
    );
    assert.match(lessons[0]!.text, /^Chapter Short Only a few words here\. Long .* Tail Only/);
    // The entry at the same place as the next has no text: no module, no lesson of its own.
    assert.ok(!modules.some((m) => m.title === "Duplicate entry"));
    distinct(lessons);
  },
);

Deno.test(
  "lessons: headings found by font size start where they are",
  async () => {
    // Two chapters: a first page's large first line with no line as large elsewhere would
    // be the document's title (`titleBlock`), not a heading.
    const { pages } = await read([{
      heading: "Introduction",
      paragraphs: [sentences("intro", 4)],
      sections: [
        { heading: "Background", paragraphs: [sentences("background", 4)] },
        { heading: "Scope", paragraphs: [sentences("scope", 4)] },
      ],
    }, { heading: "Methods", paragraphs: [sentences("methods", 4)] }]);
    const headings = detectHeadings(pages);
    assert.deepEqual(headings.map((h) => [h.title, h.level]), [
      ["Introduction", 1],
      ["Background", 2],
      ["Scope", 2],
      ["Methods", 1],
    ]);
    const lessons = texts(pages, structure(headings, pages, "a.pdf"));
    assert.deepEqual(lessons.map((l) => l.title), [
      "Introduction",
      "Background",
      "Scope",
      "Methods",
    ]);
    assert.match(lessons[1]!.text, /^Background .*background number 4 [^.]*\.$/);
    distinct(lessons);
  },
);

Deno.test("lessons: without an outline, ten pages a lesson", async () => {
  const { pages } = await read(
    Array.from({ length: 12 }, (_, i) => ({ paragraphs: [`page ${i + 1} text`] })),
  );
  const lessons = texts(pages, structure([], pages, "notes.pdf"));
  assert.deepEqual(lessons.map((l) => [l.module, l.title, l.pages]), [
    ["notes", "Pages 1-10", [1, 10]],
    ["notes", "Pages 11-12", [11, 12]],
  ]);
  assert.match(lessons[0]!.text, /^page 1 text .* page 10 text$/);
  assert.equal(lessons[1]!.text, "page 11 text page 12 text");
});
