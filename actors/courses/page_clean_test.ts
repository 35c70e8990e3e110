/**
 * Page cleaning: furniture (running heads and feet, page numbers) found by place and
 * repetition or by folio, control characters and line-end hyphens, back matter set apart,
 * and, on a generated book without an outline, the title page as the title and numbered
 * headings as modules and lessons.
 */
import assert from "node:assert/strict";
import { sentences, typesetBook } from "../../tests/fixtures/pdfs.ts";
import { type Line, type PageText, PdfDocument } from "./pdf.ts";
import { backMatterTitle, cleanPages, findFurniture, prepareFile } from "./page_clean.ts";
import { moduleSummary, structure } from "./pipeline.ts";
import { passagesBetween } from "./lessons.ts";
import { LocalWriter } from "./writer/local.ts";
import { DocumentStats } from "./writer/text.ts";

/** A line without its `y`, as an older extraction stored it: places are ranks from the edges. */
const line = (text: string, size = 10.9): Line => ({ text, size }) as Line;
/** Sentences as lines, the marker spelled out so that lines differ by more than digits. */
const prose = (marker: string, n: number) =>
  sentences(
    marker.replace(/\d/g, (d) =>
      "zero one two three four five six seven eight nine".split(" ")[Number(d)]!),
    n,
  )
    .split(/(?<=\.) /).map((s) =>
      line(s)
    );
const text = (pages: PageText[]) => pages.flatMap((p) => p.lines.map((l) => l.text));

Deno.test("cleanPages drops running heads carrying the folio and lone page numbers", () => {
  // As texinfo sets a book: "Chapter N: Title <folio>" on top, the chapter's first page with
  // only its number; roman numbers in the front matter.
  const pages: PageText[] = [
    { page: 1, lines: [line("i"), line("Preface", 17.2), ...prose("preface", 4)] },
    { page: 2, lines: [line("ii"), ...prose("thanks", 4)] },
    { page: 3, lines: [line("1"), line("1 Simple manipulations", 17.2), ...prose("simple", 5)] },
    {
      page: 4,
      lines: [line("Chapter 1: Simple manipulations; numbers and vectors 2"), ...prose("vec", 5)],
    },
    {
      page: 5,
      lines: [
        line("Chapter 1: Simple manipulations; numbers and vectors 3"),
        line("2.2 Arithmetic", 14.3),
        ...prose("arith", 5),
      ],
    },
    { page: 6, lines: [line("4"), line("2 Objects", 17.2), ...prose("objects", 5)] },
    { page: 7, lines: [line("Chapter 2: Objects 5"), ...prose("modes", 5)] },
    // Chapters opening on pages in a row are numbered in step with them: still headings.
    { page: 8, lines: [line("6"), line("3 Lists", 17.2), ...prose("lists", 3)] },
    { page: 9, lines: [line("7"), line("4 Frames", 17.2), ...prose("frames", 3)] },
    { page: 10, lines: [line("8"), line("5 Files", 17.2), ...prose("files", 3)] },
    // The last line a figure's label, a roman numeral: not this page's number.
    { page: 11, lines: [line("Chapter 5: Files 9"), ...prose("axes", 3), line("X")] },
  ];
  const cleaned = cleanPages(pages);
  const out = text(cleaned.pages);
  for (const furniture of ["i", "ii", "1", "4", "6", "7", "8"]) {
    assert.ok(!out.includes(furniture), `page number ${furniture} dropped`);
  }
  assert.ok(!out.some((t) => t.startsWith("Chapter ")), "running heads dropped");
  for (
    const kept of ["Preface", "1 Simple manipulations", "2.2 Arithmetic", "3 Lists", "5 Files"]
  ) {
    assert.ok(out.includes(kept), `${kept} kept`);
  }
  assert.equal(cleaned.furniture, 11);
  assert.equal(out.at(-1), "X", "a lone roman numeral that is not a folio stays");
  assert.equal(out.length, text(pages).length - 11, "nothing else dropped");
});

Deno.test("cleanPages drops heads and feet repeated at the same place, odd and even apart", () => {
  const pages: PageText[] = Array.from({ length: 8 }, (_, i) => ({
    page: i + 1,
    lines: [
      line(i % 2 ? "A Short Course in Statistics" : "Descriptive statistics", 9),
      ...prose(`p${i}`, 4),
      line("Draft: not for circulation", 8),
      line(`Page ${i + 1} of 8`, 8),
    ],
  }));
  const out = text(cleanPages(pages).pages);
  assert.deepEqual(out, pages.flatMap((p) => p.lines.slice(1, -2).map((l) => l.text)));
});

Deno.test("findFurniture uses the line's top when the extractor gives it", () => {
  // The running head is written after the body (last in the stream) but sits at the top.
  const pages: PageText[] = Array.from({ length: 5 }, (_, i) => ({
    page: i + 1,
    lines: [
      ...prose(`q${i}`, 3).map((l, j) => ({ ...l, y: 100 + j * 14 })),
      { ...line("Journal of Widget Studies", 9), y: 40 },
      { ...line(String(i + 31), 9), y: 760 },
      ...prose(`r${i}`, 3).map((l, j) => ({ ...l, y: 200 + j * 14 })),
    ],
  }));
  const found = findFurniture(pages);
  for (const p of pages) {
    assert.deepEqual(
      [...found.get(p.page)!].map((i) => p.lines[i]!.text).sort(),
      [String(p.page + 30), "Journal of Widget Studies"],
    );
  }
});

Deno.test("cleanPages strips control characters and joins words hyphenated at line ends", () => {
  const pages: PageText[] = [{
    page: 1,
    lines: [
      line("\u0084 The pens of group A:\b"),
      line("a list of op-"),
      line("tional values, with user-"),
      line("defined ones and S-"),
      line("Plus ones; a user-defined pen, a non-"),
      line("numeric width."),
    ],
  }];
  assert.deepEqual(text(cleanPages(pages).pages), [
    "The pens of group A:",
    "a list of optional",
    "values, with user-defined",
    "ones and S-Plus",
    "ones; a user-defined pen, a non-numeric",
    "width.",
  ]);
});

Deno.test("back matter pages are set apart and their outline entries dropped", () => {
  const leaders = (t: string, n: number) => line(`${t} ${". ".repeat(20)}${n}`);
  const pages: PageText[] = [
    { page: 1, lines: [line("Widgets", 20.7), line("A. N. Author", 14.3)] },
    {
      page: 2,
      lines: [
        line("Table of Contents", 17.2),
        leaders("1 Gears", 1),
        leaders("1.1 Teeth", 1),
        leaders("2 Springs", 2),
      ],
    },
    { page: 3, lines: [leaders("2.1 Coils", 2), leaders("2.2 Tension", 3), leaders("Index", 4)] },
    { page: 4, lines: [line("1 Gears", 17.2), ...prose("gear", 6)] },
    {
      page: 5,
      lines: [
        line("2 Springs", 17.2),
        ...prose("spring", 6),
        line("References", 14.3),
        line("J. M. Chambers (1998), Programming with Data. Springer, New York."),
      ],
    },
    {
      page: 6,
      lines: [
        line("R. A. Becker, J. M. Chambers and A. R. Wilks (1988), The New S Language."),
        line("Chapman & Hall, New York."),
        line("A. C. Davison and D. V. Hinkley (1997), Bootstrap Methods."),
      ],
    },
    { page: 7, lines: [line("List of Figures", 17.2), leaders("1 A gear train", 1)] },
    {
      page: 8,
      lines: [line("Index", 17.2), line("A", 14.3), line("axle, 3, 5"), line("gear, 1, 4")],
    },
    { page: 9, lines: [line("spring, 2"), line("teeth, 1"), line("tension, 3"), line("coil, 2")] },
  ];
  const file = prepareFile(pages, [
    { title: "Contents", page: 2, level: 1 },
    { title: "1 Gears", page: 4, level: 1 },
    { title: "2 Springs", page: 5, level: 1 },
    { title: "References", page: 5, level: 2 },
    { title: "List of Figures", page: 7, level: 1 },
    { title: "Appendix B Concept index", page: 8, level: 1 },
  ]);
  assert.deepEqual(file.backMatter, [
    { page: 2, kind: "contents" },
    { page: 3, kind: "contents" },
    { page: 6, kind: "bibliography" },
    { page: 7, kind: "figures" },
    { page: 8, kind: "index" },
    { page: 9, kind: "index" },
  ]);
  assert.deepEqual(file.pages.map((p) => p.page), [1, 4, 5]);
  const five = text(file.pages.filter((p) => p.page === 5));
  assert.equal(five.at(-1), prose("spring", 6).at(-1)!.text, "the page ends with its prose");
  assert.ok(!five.some((t) => /References|Chambers/.test(t)), "the block of references goes");
  assert.ok(five.includes("2 Springs"));
  assert.deepEqual(file.outline.map((e) => e.title), ["1 Gears", "2 Springs"]);
  // An outline of back matter alone: headings are found in the text instead.
  assert.deepEqual(
    prepareFile(pages, [{ title: "Contents", page: 2, level: 1 }]).outline.map((e) => e.title),
    ["1 Gears", "2 Springs"],
  );
  assert.equal(backMatterTitle("Appendix F References"), "bibliography");
  assert.equal(backMatterTitle("Function and variable index"), "index");
  assert.equal(backMatterTitle("Indexing data frames"), null);
});

Deno.test("a body page with numbers at its line ends is not taken for back matter", () => {
  const pages: PageText[] = [{
    page: 1,
    lines: [
      line("3 Versions", 17.2),
      ...prose("version", 3),
      line("The current release is numbered 4.2.2 and the next one 4.3."),
      line("Set the width to 12"),
      ...prose("width", 3),
    ],
  }];
  const code: PageText = {
    page: 2,
    lines: [line("index"), line("x[index] <- 0"), ...prose("code", 4)],
  };
  const cleaned = cleanPages([...pages, code]);
  assert.deepEqual(cleaned.backMatter, []);
  assert.deepEqual(text(cleaned.pages), text([...pages, code]));
});

Deno.test("a book's title on its title page stays, though it is also the running head", () => {
  const pages: PageText[] = [
    { page: 1, lines: [line("A Short Course", 24), line("A. Author", 14)] },
    ...Array.from({ length: 6 }, (_, i) => ({
      page: i + 2,
      lines: [line("A Short Course", 9), ...prose(`page${i}`, 4)],
    })),
  ];
  const file = prepareFile(pages, []);
  assert.equal(file.title, "A Short Course");
  assert.equal(file.furniture, 6);
});

Deno.test({
  name: "a generated book without an outline: clean text, title page, numbered structure",
}, async () => {
  const pdf = await PdfDocument.open(await typesetBook());
  let pages: PageText[];
  try {
    assert.deepEqual(await pdf.outline(), []);
    pages = await pdf.pages(1, pdf.pageCount);
  } finally {
    await pdf.close();
  }
  const file = prepareFile(pages, []);
  assert.equal(file.title, "A Course on Widgets");
  assert.deepEqual(file.backMatter, [
    { page: 2, kind: "contents" },
    { page: 7, kind: "bibliography" },
    { page: 8, kind: "index" },
  ]);
  assert.deepEqual(file.outline.map((e) => [e.title, e.page, e.level]), [
    ["1 Gears", 3, 1],
    ["1.1 Teeth", 3, 2],
    ["1.2 Ratios", 4, 2],
    ["2 Springs", 5, 1],
    ["2.1 Coils", 5, 2],
    ["2.2 Tension", 6, 2],
  ]);
  const all = file.pages.flatMap((p) => p.lines.map((l) => l.text)).join("\n");
  for (const furniture of [/^Chapter \d/m, /^\d+$/m, /^i$/m, /Jane Q\. Public/, /March 2024/]) {
    assert.doesNotMatch(all, furniture);
  }
  assert.match(all.replace(/\n/g, " "), /releases it on demand, when the load/);

  const modules = structure(file.outline, file.pages, file.title ?? "book.pdf");
  assert.deepEqual(modules.map((m) => [m.title, m.lessons.map((l) => [l.title, l.from, l.to])]), [
    ["1 Gears", [["1.1 Teeth", 3, 3], ["1.2 Ratios", 4, 4]]],
    // Page 6 opens with the end of 2.1, above the heading of 2.2.
    ["2 Springs", [["2.1 Coils", 5, 6], ["2.2 Tension", 6, 6]]],
  ]);
  // What the writer is given holds no furniture, and its sentences keep initials together.
  const doc = new DocumentStats();
  const pageText = (p: PageText) => p.lines.map((l) => l.text).join(" ");
  for (const p of file.pages) doc.add(pageText(p));
  const writer = new LocalWriter();
  for (const m of modules) {
    for (const l of m.lessons) {
      const passages = passagesBetween(file.pages, l.start, l.end);
      const written = await writer.lesson({ title: l.title, passages }, doc);
      const out = [written.summary, ...written.keyPoints, ...written.quiz.map((q) => q.question)];
      for (const t of out) assert.doesNotMatch(t, /Chapter \d:|Jane Q|\bde- mand\b/, t);
    }
  }
});

Deno.test("a module's summary keeps a first sentence with initials whole", () => {
  assert.equal(
    moduleSummary([
      "J. M. Chambers (1998) describes programming with data. It is the Green Book.",
      "Fig. 2 shows a gear train. Gears mesh.",
      "Not used.",
    ]),
    "J. M. Chambers (1998) describes programming with data. Fig. 2 shows a gear train.",
  );
});

Deno.test("a reference manual: heads alternate folio sides, section labels are not furniture", () => {
  // As Rd2pdf sets one: "topic 9" on odd pages, "10 topic" on even; "Arguments" or "Value"
  // open some pages, under the head; "c" is a topic (and a roman numeral).
  const topics = ["agrep", "agrep", "all", "all", "any", "c", "c", "cat", "cbind", "cbind"];
  const labels = ["Arguments", "Value", "Details", "Arguments", "Usage"];
  const pages: PageText[] = [
    { page: 1, lines: [line("Reference Index", 24), line("The R Core Team", 24)] },
    ...topics.map((topic, i) => {
      const page = i + 2;
      const folio = page + 30;
      return {
        page,
        lines: [
          line(page % 2 ? `${topic} ${folio}` : `${folio} ${topic}`),
          ...(i % 2 === 0 ? [line(labels[i / 2]!)] : []),
          ...prose(`topic${i}`, 4),
        ],
      };
    }),
  ];
  const found = findFurniture(pages);
  const dropped = pages.flatMap((p) => [...found.get(p.page) ?? []].map((i) => p.lines[i]!.text));
  assert.deepEqual(dropped, pages.slice(1).map((p) => p.lines[0]!.text));
  assert.equal(prepareFile(pages, []).title, "Reference Index The R Core Team");
});

Deno.test("a list of entries before the body is its contents, after it an index", () => {
  const entries = (names: string[]) => names.map((n, i) => line(`${n} ${". ".repeat(20)}${i + 1}`));
  const names = ["abbreviate", "agrep", "all", "any", "aperm", "apply", "array", "assign"];
  const pages: PageText[] = [
    { page: 1, lines: [line("Reference Index", 24), line("The R Core Team", 14)] },
    { page: 2, lines: entries(names) },
    { page: 3, lines: [line("1 The base package", 17.2), ...prose("base", 6)] },
    { page: 4, lines: [line("abbreviate", 14.3), ...prose("abbreviate", 6)] },
    { page: 5, lines: entries(names) },
  ];
  const file = prepareFile(pages, []);
  assert.deepEqual(file.backMatter, [{ page: 2, kind: "contents" }, { page: 5, kind: "index" }]);
  assert.deepEqual(file.pages.map((p) => p.page), [1, 3, 4]);
});

Deno.test("a short reference list atop a page takes only its block; the rest stays", () => {
  const pages: PageText[] = [
    { page: 1, lines: [line("1 Gears", 17.2), ...prose("gear", 6)] },
    {
      page: 2,
      lines: [
        line("References", 17.2),
        line("J. M. Chambers (1998), Programming with Data. Springer, New York."),
        line("A Tables of gear ratios", 17.2),
        ...prose("table", 4),
      ],
    },
  ];
  const file = prepareFile(pages, []);
  assert.deepEqual(file.backMatter, []);
  assert.deepEqual(text(file.pages.filter((p) => p.page === 2)), [
    "A Tables of gear ratios",
    ...prose("table", 4).map((l) => l.text),
  ]);
});

Deno.test("footnotes numbered in step with the pages are not taken for folios", () => {
  // Page n has folio n - 5 in its head and, at its foot, footnote n - 5 (one a page).
  const notes = [
    "e.g. GNU tar version 1.15 or later.",
    "for some Subversion clients 'http:' may appear to work.",
    "Including GCC on Linux.",
    "If a proxy needs to be set, see ?download.file.",
    "probably also 8.4 and later.",
    "not NM as we found make overriding that.",
  ];
  const pages: PageText[] = Array.from({ length: 6 }, (_, i) => {
    const page = i + 6;
    return {
      page,
      lines: [
        line(`Chapter 2: Installing R under Unix-alikes ${page - 5}`),
        ...prose(`install${i}`, 4),
        line(`${page - 5} ${notes[i]}`, 9),
      ],
    };
  });
  const out = text(cleanPages(pages).pages);
  assert.equal(out.filter((t) => t.startsWith("Chapter 2")).length, 0);
  assert.deepEqual(out.filter((t) => /^\d /.test(t)), notes.map((n, i) => `${i + 1} ${n}`));
});
