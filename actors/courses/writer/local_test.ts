import assert from "node:assert/strict";
import { LocalWriter } from "./local.ts";
import { DocumentStats, lengthClass, lessonSentences, sentences, terms } from "./text.ts";

const photosynthesis = [
  "Photosynthesis converts light energy into chemical energy stored in glucose.",
  "Chlorophyll absorbs mostly blue and red light and reflects green light.",
  "The light reactions take place in the thylakoid membranes of the chloroplast.",
  "The Calvin cycle fixes carbon dioxide into sugars in the stroma.",
  "Oxygen is released as a by-product when water molecules are split.",
  "Plants, algae and cyanobacteria all perform photosynthesis.",
  "Stomata on the leaf surface let carbon dioxide in and oxygen out.",
  "Accessory pigments such as carotenoids widen the range of absorbed wavelengths.",
  "Temperature and carbon dioxide concentration limit the rate of photosynthesis.",
];
const respiration = [
  "Cellular respiration releases energy from glucose in the mitochondria.",
  "Glycolysis splits glucose into two molecules of pyruvate in the cytoplasm.",
  "The electron transport chain produces most of the cell's adenosine triphosphate.",
  "Fermentation regenerates NAD+ when oxygen is scarce.",
];

Deno.test("local writer: extractive summary, key points and cited cloze questions", async () => {
  const doc = new DocumentStats();
  doc.add(photosynthesis.join(" "));
  doc.add(respiration.join(" "));
  const lesson = {
    title: "Photosynthesis",
    passages: [
      { text: photosynthesis.slice(0, 3).join(" "), page: 4 },
      { text: photosynthesis.slice(3).join(" "), page: 5 },
    ],
  };
  const writer = new LocalWriter();
  const a = await writer.lesson(lesson, doc);
  const b = await writer.lesson(lesson, doc);
  assert.deepEqual(a, b, "deterministic");
  for (const s of sentences(a.summary)) assert.ok(photosynthesis.includes(s), `extractive: ${s}`);
  assert.ok(a.keyPoints.length >= 3 && a.keyPoints.length <= 7);
  assert.ok(a.keyPoints.every((k) => photosynthesis.includes(k)));
  assert.ok(a.quiz.length >= 3, `${a.quiz.length} questions`);
  for (const q of a.quiz) {
    assert.equal(q.choices.length, 4);
    assert.equal(new Set(q.choices).size, 4, "distinct choices");
    const answer = q.choices[q.answer]!;
    const source = photosynthesis.find((s) => q.question.includes(s.replace(answer, "_____")));
    assert.ok(source, `the question blanks the answer in a sentence: ${q.question}`);
    assert.equal(q.page, photosynthesis.indexOf(source!) < 3 ? 4 : 5, "cites the sentence's page");
    assert.match(q.explanation, new RegExp(`Page ${q.page}`));
  }
});

Deno.test("a sentence running onto the next page is one sentence; its answer's page is cited", async () => {
  assert.deepEqual(
    lessonSentences([
      { text: "Packages extend the system. Some of these packages are built", page: 8 },
      { text: "into the base environment, but many are supplied apart. Others follow.", page: 9 },
      { text: "A page that ends well.", page: 10 },
      { text: "Another page.", page: 11 },
    ]),
    [
      { text: "Packages extend the system.", page: 8 },
      {
        text: "Some of these packages are built into the base environment, but many are " +
          "supplied apart.",
        page: 8,
        next: { at: 33, page: 9 },
      },
      { text: "Others follow.", page: 9 },
      { text: "A page that ends well.", page: 10 },
      { text: "Another page.", page: 11 },
    ],
  );
  // Written into questions: no question is half a sentence, and each cites its answer's page.
  const pages = [
    { text: photosynthesis.slice(0, 3).join(" ") + " Chlorophyll pigments in the", page: 4 },
    { text: "thylakoid membranes absorb photons for glucose synthesis.", page: 5 },
  ];
  const doc = new DocumentStats();
  for (const p of pages) doc.add(p.text);
  const out = await new LocalWriter().lesson({ title: "Light", passages: pages }, doc);
  const texts = [...out.keyPoints, ...out.quiz.map((q) => q.question)];
  assert.ok(texts.some((t) => /pigments in the (?:_____|thylakoid) membranes/.test(t)), "joined");
  for (const t of texts) assert.match(t, /^(?:Fill in the blank: )?[A-Z_]/, t);
  for (const q of out.quiz) {
    const answer = q.choices[q.answer]!;
    assert.ok(pages.find((p) => p.page === q.page)!.text.includes(answer), q.question);
  }
});

Deno.test("sentences and terms handle non-Latin text", () => {
  assert.deepEqual(sentences("Фотосинтез идёт в хлоропластах. Это важно! Да?"), [
    "Фотосинтез идёт в хлоропластах.",
    "Это важно!",
    "Да?",
  ]);
  assert.deepEqual(terms("Хлорофилл поглощает свет."), ["хлорофилл", "поглощает", "свет"]);
});

Deno.test("sentences are not split at initials or abbreviations", () => {
  assert.deepEqual(
    sentences(
      "Richard A. Becker, John M. Chambers and Allan R. Wilks (1988), The New S Language. " +
        "Chapman & Hall, New York. Plot it, e.g. with plot(), as in Fig. 3 of Smith et al. " +
        "The end, i.e. Done. Set x. Then y.",
    ),
    [
      "Richard A. Becker, John M. Chambers and Allan R. Wilks (1988), The New S Language.",
      "Chapman & Hall, New York.",
      "Plot it, e.g. with plot(), as in Fig. 3 of Smith et al. The end, i.e. Done.",
      "Set x.",
      "Then y.",
    ],
  );
});

// ---- Quiz rules, checked on generated lesson texts and on real book pages ----

/** English function and discourse words: none of them carries a sentence. */
const FUNCTION_WORDS = new Set(
  ("a about above after again against all also although always am among an and another any " +
    "are as at be because been before being below between both but by can cannot could did do " +
    "does doing down during each either else enough even ever every few first following for " +
    "from further had has have having he her here hers herself him himself his how however i " +
    "if in indeed instead into is it its itself just least less many may might more most much " +
    "must my myself neither never no nor not now of off often on once only onto or other " +
    "others otherwise our ours ourselves out over own perhaps quite rather same several shall " +
    "she should since so some still such than that the their theirs them themselves then there " +
    "therefore these they this those though through thus to too under until up upon us usually " +
    "very was we were what whatever when where whether which while who whom whose why will " +
    "with within without would yet you your yours yourself")
    .split(" "),
);
const ROMAN_NUMERAL = /^m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$/i;
const LETTER_WORD = /^\p{L}+(?:['’-]\p{L}+)*$/u;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const norm = (s: string) => s.replace(/\s+/g, " ").trim();

/** Whether `word` occurs whole in `text`: not inside a word, not half of a hyphenated break. */
function occursWhole(word: string, text: string): boolean {
  const re = new RegExp(
    `(?<![\\p{L}\\p{N}_'’-])${esc(word)}(?![\\p{L}\\p{N}_]|-(?:\\s|$)|['’-]\\p{L})`,
    "giu",
  );
  for (const m of text.matchAll(re)) {
    if (!/\p{L}-\s+$/u.test(text.slice(Math.max(0, m.index - 40), m.index))) return true;
  }
  return false;
}

interface Course {
  /** Lessons as pages of text (lines joined by spaces, as the pipeline gives them). */
  lessons: { page: number; text: string }[][];
  /** Page numbers printed on the pages. */
  pageLabels: string[];
}

type Rule = "distractors" | "blank" | "repeats";

/**
 * Writes every lesson of `course` and checks each question against the quiz rules: what breaks
 * each rule, and how many questions there were.
 */
async function quizViolations(
  course: Course,
): Promise<{ questions: number; broken: Record<Rule, string[]> }> {
  const doc = new DocumentStats();
  const all = course.lessons.flat();
  for (const p of all) doc.add(p.text);
  const courseText = all.map((p) => p.text).join(" ");
  const writer = new LocalWriter();
  const broken: Record<Rule, string[]> = { distractors: [], blank: [], repeats: [] };
  let questions = 0;
  for (const [i, passages] of course.lessons.entries()) {
    const lessonText = norm(passages.map((p) => p.text).join(" "));
    const out = await writer.lesson({ title: `Lesson ${i + 1}`, passages }, doc);
    const points = new Set(out.keyPoints.map(norm));
    const seen = new Set<string>();
    for (const q of out.quiz) {
      questions++;
      const answer = q.choices[q.answer]!;
      const at = `lesson ${i + 1}, "${q.question}" (${q.choices.join(" / ")})`;
      const fail = (rule: Rule, what: string) => broken[rule].push(`${what}: ${at}`);
      // Distractors: distinct whole words of the course, of the answer's length class.
      if (new Set(q.choices.map((c) => c.toLowerCase())).size !== q.choices.length) {
        fail("distractors", "choices repeat");
      }
      for (const d of q.choices.filter((_, j) => j !== q.answer)) {
        if (!LETTER_WORD.test(d)) fail("distractors", `"${d}" is not a word of letters`);
        else if (!occursWhole(d, courseText)) fail("distractors", `"${d}" is a word fragment`);
        if (lengthClass(d) !== lengthClass(answer)) {
          fail("distractors", `"${d}" is not in the length class of "${answer}"`);
        }
      }
      // The blank: a whole word of the lesson that carries the sentence.
      if (!LETTER_WORD.test(answer)) fail("blank", `"${answer}" is not a word`);
      if (FUNCTION_WORDS.has(answer.toLowerCase())) fail("blank", `"${answer}" is a stop word`);
      if (ROMAN_NUMERAL.test(answer)) fail("blank", `"${answer}" is a numeral`);
      if (course.pageLabels.includes(answer)) fail("blank", `"${answer}" is a page number`);
      // An adverb modifies the sentence, it does not carry it.
      if (/\p{L}{4}ly$/u.test(answer)) fail("blank", `"${answer}" is an adverb`);
      if (!occursWhole(answer, lessonText)) fail("blank", `"${answer}" is a word fragment`);
      if (!/(?:^|[^\p{L}\p{N}_-])_____(?:$|[^\p{L}\p{N}_])/u.test(q.question)) {
        fail("blank", "the blank is part of a word");
      }
      const sentence = norm(
        q.question.replace(/^Fill in the blank:\s*/, "").replace("_____", answer),
      );
      if (!lessonText.includes(sentence)) {
        fail("blank", "the question is no sentence of the lesson");
      }
      // No question repeats a key point (or another question) word for word.
      if (points.has(sentence)) fail("repeats", "the question is a key point");
      if (seen.has(sentence)) fail("repeats", "the question is another question");
      seen.add(sentence);
    }
  }
  return { questions, broken };
}

/** Words of a generated statistics book: long enough to be hyphenated at line ends. */
const BOOK_WORDS = [
  "regression",
  "variance",
  "estimator",
  "likelihood",
  "covariance",
  "transformation",
  "parameter",
  "residual",
  "distribution",
  "interval",
  "hypothesis",
  "quantile",
  "bootstrap",
  "smoothing",
  "permutation",
  "correlation",
];

/**
 * A generated book's lessons: pages of prose set in 56-character lines as a typesetter would
 * (a word that does not fit is hyphenated across the line break), with counts and table
 * numbers in the text and the page number as the page's last line.
 */
function generatedBook(lessons: number, pagesPerLesson: number): Course {
  const course: Course = { lessons: [], pageLabels: [] };
  let page = 1;
  for (let l = 0; l < lessons; l++) {
    const passages = [];
    for (let p = 0; p < pagesPerLesson; p++, page++) {
      const text = Array.from({ length: 8 }, (_, i) => {
        const w = (k: number) => BOOK_WORDS[(l * 5 + p * 3 + i * k) % BOOK_WORDS.length]!;
        return `The ${w(1)} of table ${page * 10 + i} is computed from the ${w(3)} in ${
          (page * 37 + i * 101) % 1000
        } steps, so the ${w(7)} explains the ${w(11)} of ${l + 2} groups.`;
      }).join(" ");
      const lines: string[] = [];
      let line = "";
      for (const word of text.split(" ")) {
        if (line.length + 1 + word.length <= 56) line = line ? `${line} ${word}` : word;
        else if (word.length > 6 && 56 - line.length > 4) {
          const cut = 56 - line.length - 2;
          lines.push(`${line} ${word.slice(0, cut)}-`);
          line = word.slice(cut);
        } else {
          lines.push(line);
          line = word;
        }
      }
      lines.push(line, String(page));
      course.pageLabels.push(String(page));
      passages.push({ page, text: lines.join(" ") });
    }
    course.lessons.push(passages);
  }
  return course;
}

async function realBooks(): Promise<[string, Course][]> {
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("../../../tests/fixtures/book_pages.json", import.meta.url)),
  ) as { books: Record<string, { page: number; lines: string[] }[]> };
  return Object.entries(fixture.books).map(([name, pages]) => {
    const texts = pages.map((p) => ({ page: p.page, text: p.lines.join(" ") }));
    const lessons = [];
    for (let i = 0; i < texts.length; i += 2) lessons.push(texts.slice(i, i + 2));
    // Printed page numbers: the numbers on the pages' first and last lines.
    const pageLabels = pages.flatMap((p) =>
      [p.lines[0], p.lines.at(-1)].flatMap((l) => l?.match(/\b\d{1,3}\b/g) ?? [])
    );
    return [name, { lessons, pageLabels }];
  });
}

const RULES: [Rule, string][] = [
  ["distractors", "distractors are whole words of the course in the answer's length class"],
  ["blank", "the blank is a whole word that carries the sentence"],
  ["repeats", "no question repeats a key point or another question"],
];

for (const [rule, says] of RULES) {
  Deno.test(`quiz on generated lesson texts: ${says}`, async () => {
    const book = generatedBook(6, 2);
    assert.ok(book.lessons.flat().some((p) => /\p{L}- \p{Ll}/u.test(p.text)), "hyphenated");
    const { questions, broken } = await quizViolations(book);
    assert.deepEqual(broken[rule], []);
    assert.ok(questions >= 12, `${questions} questions over 6 lessons`);
  });

  Deno.test(`quiz on real book pages: ${says}`, async () => {
    for (const [name, book] of await realBooks()) {
      const { questions, broken } = await quizViolations(book);
      assert.deepEqual(broken[rule], [], name);
      assert.ok(questions >= book.lessons.length * 2, `${name}: ${questions} questions`);
    }
  });
}

Deno.test("quiz questions are prose: no control characters, no table rows", async () => {
  // Table rows longer than a key point may be, of words the lesson uses most.
  const rows = Array.from(
    { length: 8 },
    (_, i) => `Price Floor Area Rooms 0${i} 5${i}.00 11${i}.0 8${i}0 ${i}`,
  ).join(" ") + ".";
  const text = [
    "A data frame holds variables of different modes as columns of equal length.",
    // A control character (a glyph the PDF maps to U+0008) in a sentence too long for a key
    // point, of the lesson's words.
    "Input files with names and row labels for a data frame look as follows, \b the header " +
    "line names the columns of the data frame, each further line starts with the row label " +
    "and gives the values of the columns, and the spreadsheet columns become the variables.",
    `The spreadsheet ${rows}`,
    "Factors record categorical variables with their levels in the data frame.",
    "The function read.table reads a data frame straight from an external file.",
    "Row labels are taken from the first column when the header line is shorter.",
    "Numeric columns are converted to numbers and the others to factors by default.",
    "Missing values are written as NA in the external file and read back as missing.",
    "Column names come from the header line, or are made up as V1, V2 and so on.",
  ].join(" ");
  const doc = new DocumentStats();
  doc.add(text);
  const out = await new LocalWriter().lesson(
    { title: "Reading data", passages: [{ text, page: 3 }] },
    doc,
  );
  assert.ok(out.quiz.length >= 2, `${out.quiz.length} questions`);
  for (const q of out.quiz) {
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(q.question, /[\u0000-\u001F\u007F-\u009F]/, q.question);
    assert.doesNotMatch(q.question, /\d+\.\d+ \d+\.\d+/, `a table row: ${q.question}`);
  }
});

Deno.test("quiz: glyphs run together into a word longer than any word are no answer", async () => {
  // A title page draws its logo as one letter string repeated: real books have it.
  const logo = "symptote".repeat(30);
  const text = [
    `Asymptote The Vector Graphics Language ${logo} is a descriptive vector graphics language.`,
    "Asymptote provides a coordinate-based framework for technical drawing.",
    "Labels and equations are typeset with LaTeX for high-quality output.",
    "The language is inspired by MetaPost but has an improved syntax.",
    "Graphs are drawn with the graph module from arrays of coordinates.",
    "Three-dimensional figures are rendered with an interactive viewer.",
    "Surfaces are shaded with lighting that the figure may change.",
    "Paths are built from nodes joined by cubic splines or straightforward segments.",
    "Picture transformations and characterizations are applied to every object.",
  ].join(" ");
  const doc = new DocumentStats();
  doc.add(text);
  const out = await new LocalWriter().lesson(
    { title: "Asymptote", passages: [{ text, page: 1 }] },
    doc,
  );
  assert.ok(out.quiz.length >= 1, `${out.quiz.length} questions`);
  for (const q of out.quiz) {
    for (const c of q.choices) assert.ok(c.length <= 24, `"${c}" is no word: ${q.question}`);
  }
});
