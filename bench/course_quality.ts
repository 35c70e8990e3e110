/**
 * The quality of the courses the real pipeline writes from real books, judged from outside the
 * product: main.ts in its own process (the embedded default: PGlite, local writer and
 * embedder) builds one course per PDF, and each course is checked against the PDF's own text
 * as `pdftotext` (poppler) reads it, page by page:
 * - lessons, duplicate lessons and duplicate questions (target 0): a duplicate has the same
 *   text as an earlier one after whitespace normalisation, or a word 3-shingle Jaccard ≥ 0.9
 *   with it; lessons are compared by summary, questions by question text;
 * - questions that repeat a key point of their lesson word for word (target 0);
 * - furniture kept (target 0): running heads and feet, i.e. lines at the top or bottom of
 *   many pages that read the same once digits are normalised, and bare page numbers, found
 *   from `pdftotext -layout` alone, then looked for in lesson summaries, key points and
 *   questions;
 * - control characters in any lesson text (target 0);
 * - distractors that are no whole word of the book (target 0): with a digit, or not a word of
 *   its `pdftotext` text once line-end hyphenation is undone ("com-|plicated" is one word);
 * - quiz answers on the cited page (target ≥ 97 %): the answer, as a whole word, in the
 *   `pdftotext` text of the page the question cites;
 * - ask precision/recall and search hit rate at 3, from `bench/course_ask.ts` when it exists
 *   (see {@link askHook}); "n/a" otherwise.
 *
 *   deno run -A bench/course_quality.ts [book.pdf ...] [--json bench/results/course_quality.json]
 */
import { parseArgs } from "node:util";
import { freePort, startTask, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";

const BOOKS = [
  "/work/.corpus/x/usr/share/R/doc/manual/R-intro.pdf",
  "/work/.corpus/x/usr/share/doc/asymptote/asymptote.pdf",
];
const KEY = "troupe-bench-key-0123456789abcdef";
const headers = { "x-api-key": KEY };

interface Question {
  question: string;
  choices: string[];
  answer: number;
  explanation: string;
  page: number;
}
interface Lesson {
  title: string;
  summary: string;
  keyPoints: string[];
  pages: [number, number];
  quiz: Question[];
}
interface Course {
  status: string;
  modules: { title: string; summary: string; lessons: Lesson[] }[];
}

/** What the ask benchmark (bench/course_ask.ts) is given and answers. */
export interface AskHookInput {
  /** The server's base URL, e.g. http://127.0.0.1:12345. */
  base: string;
  headers: Record<string, string>;
  courseId: string;
  pdfPath: string;
  /** `pdftotext` text of each page, index 0 = page 1. */
  pages: string[];
  course: Course;
}
export interface AskHookResult {
  precision: number;
  recall: number;
  hitRateAt3: number;
}

/**
 * bench/course_ask.ts's `courseAsk`, called with {@link AskHookInput}; it answers
 * {@link AskHookResult} (fractions 0..1, NaN for a book without a question set).
 */
async function askHook(): Promise<((i: AskHookInput) => Promise<AskHookResult>) | null> {
  const url = new URL("./course_ask.ts", import.meta.url);
  try {
    await Deno.stat(url);
  } catch {
    return null;
  }
  const mod = await import(url.href) as Record<string, unknown>;
  const fn = mod.courseAsk ?? mod.default;
  return typeof fn === "function" ? fn as (i: AskHookInput) => Promise<AskHookResult> : null;
}

/** `pdftotext` text of each page (index 0 = page 1), with or without `-layout`. */
export async function pdftotextPages(path: string, layout: boolean): Promise<string[]> {
  const out = await new Deno.Command("pdftotext", {
    args: [...(layout ? ["-layout"] : []), "-enc", "UTF-8", path, "-"],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) throw new Error(`pdftotext failed on ${path}`);
  const pages = new TextDecoder().decode(out.stdout).split("\f");
  if (pages.at(-1)?.trim() === "") pages.pop();
  return pages;
}

const collapse = (s: string) => s.replace(/\s+/g, " ").trim();

/** Furniture of a book: running-head/foot text patterns and the bare page numbers per page. */
export interface Furniture {
  /** Running heads/feet, digits normalised to `#`, page-number tokens at their ends removed. */
  heads: string[];
  /** Bare page-number lines (arabic or roman) at the top or bottom of a page, by 1-based page. */
  numbers: Map<number, string>;
}

const PAGE_NUMBER = /^(?:\d{1,4}|[ivxlcdm]{1,7})$/i;
/** Lines looked at from each end of a page. */
const EDGE = 2;

/**
 * Running heads and feet: a line among the first or last {@link EDGE} non-empty lines of at
 * least 3 pages that reads the same once digits are `#` and spaces collapsed,
 * with at least 4 letters; and bare page numbers at those places, in step with the pages (the
 * same offset from the page on three pages at least; not a footnote's mark).
 */
export function furniture(layoutPages: string[]): Furniture {
  const seen = new Map<string, Set<number>>();
  const bare = new Map<number, string>();
  /** Pages by the offset of their bare number from their own (arabic and roman apart). */
  const offsets = new Map<string, Set<number>>();
  layoutPages.forEach((text, i) => {
    const lines = text.split("\n").map(collapse).filter(Boolean);
    const edges = new Set([...lines.slice(0, EDGE), ...lines.slice(-EDGE)]);
    for (const line of edges) {
      if (PAGE_NUMBER.test(line)) {
        bare.set(i + 1, line);
        const o = numberOffset(line, i + 1);
        if (!offsets.has(o)) offsets.set(o, new Set());
        offsets.get(o)!.add(i + 1);
        continue;
      }
      const norm = line.replace(/\d+/g, "#");
      if ((norm.match(/\p{L}/gu) ?? []).length < 4) continue;
      if (!seen.has(norm)) seen.set(norm, new Set());
      seen.get(norm)!.add(i + 1);
    }
  });
  const min = 3;
  const heads = [...seen].filter(([, pages]) => pages.size >= min).map(([norm]) =>
    // The page number at either end is matched on its own (a head may lose it or keep it).
    norm.replace(/^(?:#|[ivxlcdm]+)\s+/i, "").replace(/\s+(?:#|[ivxlcdm]+)$/i, "").trim()
  ).filter((h) => (h.match(/\p{L}/gu) ?? []).length >= 4);
  // A page number runs in step with the pages: a bare number whose offset from its page no
  // two other pages share is a footnote's mark, not the page's number.
  const numbers = new Map(
    [...bare].filter(([page, n]) => (offsets.get(numberOffset(n, page))?.size ?? 0) >= 3),
  );
  return { heads: [...new Set(heads)], numbers };
}

/** A bare number less its page, as "arabic:offset" or "roman:offset". */
function numberOffset(label: string, page: number): string {
  if (/^\d+$/.test(label)) return `arabic:${Number(label) - page}`;
  const v: Record<string, number> = { i: 1, v: 5, x: 10, l: 50, c: 100, d: 500, m: 1000 };
  const t = label.toLowerCase();
  let total = 0;
  for (let i = 0; i < t.length; i++) {
    const a = v[t[i]!]!;
    total += a < (v[t[i + 1] ?? ""] ?? 0) ? -a : a;
  }
  return `roman:${total - page}`;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * A head's pattern: `#` any number, any run of spaces as any (or no) whitespace; in the head's
 * letter case (a head "Index" is not the word "index" of a sentence).
 */
function headPattern(head: string): RegExp {
  const body = head.split(" ").map((w) => escape(w).replace(/#/g, "\\d+")).join("\\s*");
  return new RegExp(`(?<![\\p{L}\\p{N}])${body}(?![\\p{L}\\p{N}])`, "gu");
}

/**
 * Occurrences of furniture in a text cited to `pages`: each running head, and each bare page
 * number of those pages standing where a sentence ends or the text starts or ends (where a
 * page's last or first line lands when lines are joined).
 */
export function furnitureIn(text: string, f: Furniture, pages: [number, number]): number {
  let n = 0;
  for (const h of f.heads) n += text.match(headPattern(h))?.length ?? 0;
  for (let p = pages[0]; p <= pages[1] + 1; p++) {
    const label = f.numbers.get(p);
    if (!label) continue;
    const re = new RegExp(
      `(?:^|[.!?:;]\\s+)${escape(label)}(?=\\s+\\S|$)|\\s${escape(label)}$`,
      "gu",
    );
    n += text.match(re)?.length ?? 0;
  }
  return n;
}

/** Word 3-shingles of a text (lower-cased; a text of fewer than 3 words is one shingle). */
export function shingles(text: string): Set<string> {
  const words = text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
  if (words.length < 3) return new Set([words.join(" ")]);
  const out = new Set<string>();
  for (let i = 0; i + 3 <= words.length; i++) out.add(words.slice(i, i + 3).join(" "));
  return out;
}

function jaccard(a: Set<string>, b: Set<string>): number {
  let inter = 0;
  for (const x of a) if (b.has(x)) inter++;
  return inter / (a.size + b.size - inter || 1);
}

/** How many texts duplicate an earlier one (same normalised text, or 3-shingle Jaccard ≥ 0.9). */
export function duplicates(texts: string[]): number {
  const seen: { norm: string; sh: Set<string> }[] = [];
  const exact = new Set<string>();
  let n = 0;
  for (const t of texts) {
    const norm = collapse(t);
    const sh = shingles(norm);
    if (exact.has(norm) || seen.some((s) => jaccard(s.sh, sh) >= 0.9)) n++;
    else {
      exact.add(norm);
      seen.push({ norm, sh });
    }
  }
  return n;
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/g;

/** The sentence a cloze question was made from (its blank filled with the answer). */
function filled(q: Question): string {
  return collapse(
    q.question.replace(/^Fill in the blank:\s*/, "").replace("_____", q.choices[q.answer] ?? ""),
  );
}

/** The answer as a whole word, case- and width-insensitively, in a page's text. */
export function onPage(answer: string, pageText: string): boolean {
  const norm = (s: string) =>
    s.normalize("NFKC").toLowerCase().replace(/(\p{L})-\s*\n\s*(\p{L})/gu, "$1$2");
  const re = new RegExp(`(?<![\\p{L}\\p{N}])${escape(norm(answer))}(?![\\p{L}\\p{N}])`, "u");
  return re.test(norm(pageText));
}

/** The lower-cased words of a book's text, its line-end hyphenation undone. */
export function bookWords(pages: string[]): Set<string> {
  const text = pages.join("\n").normalize("NFKC").toLowerCase()
    .replace(/(\p{L})-[ \t]*\n\s*(\p{L})/gu, "$1$2");
  const out = new Set<string>();
  for (const w of text.split(/[^\p{L}\p{N}'’_-]+/u)) {
    const t = w.replace(/^['’_-]+|['’_-]+$/gu, "");
    if (t) out.add(t);
  }
  return out;
}

export interface Quality {
  book: string;
  pages: number;
  status: string;
  lessons: number;
  duplicateLessons: number;
  questions: number;
  duplicateQuestions: number;
  questionsRepeatingKeyPoint: number;
  badDistractors: number;
  furnitureKept: number;
  controlChars: number;
  answersOnPage: number;
  ask: AskHookResult | null;
}

/** The measures of one built course against its book's `pdftotext` pages. */
export function judge(
  book: string,
  course: Course,
  layoutPages: string[],
  plainPages: string[],
): Omit<Quality, "ask"> {
  const lessons = course.modules.flatMap((m) => m.lessons);
  const questions = lessons.flatMap((l) => l.quiz);
  const f = furniture(layoutPages);
  let furnitureKept = 0;
  let controlChars = 0;
  let repeating = 0;
  let onCited = 0;
  let badDistractors = 0;
  const vocabulary = bookWords(plainPages);
  for (const l of lessons) {
    const texts = [l.summary, ...l.keyPoints, ...l.quiz.map((q) => q.question)];
    for (const t of texts) furnitureKept += furnitureIn(t, f, l.pages);
    const all = [
      l.title,
      ...texts,
      ...l.quiz.flatMap((q) => [...q.choices, q.explanation]),
    ];
    for (const t of all) controlChars += t.match(CONTROL)?.length ?? 0;
    const points = new Set(l.keyPoints.map(collapse));
    for (const q of l.quiz) {
      if (points.has(filled(q))) repeating++;
      const answer = q.choices[q.answer] ?? "";
      const page = (layoutPages[q.page - 1] ?? "") + "\n" + (plainPages[q.page - 1] ?? "");
      if (answer && onPage(answer, page)) onCited++;
      for (const d of q.choices.filter((_, i) => i !== q.answer)) {
        const t = d.normalize("NFKC").toLowerCase();
        if (/\p{N}/u.test(t) || !vocabulary.has(t)) badDistractors++;
      }
    }
  }
  return {
    book,
    pages: layoutPages.length,
    status: course.status,
    lessons: lessons.length,
    duplicateLessons: duplicates(lessons.map((l) => l.summary)),
    questions: questions.length,
    duplicateQuestions: duplicates(questions.map((q) => q.question)),
    questionsRepeatingKeyPoint: repeating,
    badDistractors,
    furnitureKept,
    controlChars,
    answersOnPage: questions.length ? onCited / questions.length : NaN,
  };
}

async function build(base: string, path: string): Promise<{ id: string; course: Course }> {
  const form = new FormData();
  const name = path.split("/").at(-1)!;
  form.append("title", name);
  form.append("files", new File([await Deno.readFile(path)], name));
  const res = await fetch(`${base}/api/courses`, { method: "POST", headers, body: form });
  if (res.status !== 202) throw new Error(`upload of ${name}: ${res.status} ${await res.text()}`);
  const { courseId } = await res.json() as { courseId: string };
  const deadline = Date.now() + 15 * 60_000;
  while (Date.now() < deadline) {
    const course = await (await fetch(`${base}/api/courses/${courseId}`, { headers })).json();
    if (course.status !== "processing") return { id: courseId, course };
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name}: course not built in 15 minutes`);
}

async function main() {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      json: { type: "string", default: "bench/results/course_quality.json" },
      /** A directory to write each built course to (as JSON), to look at what was judged. */
      dump: { type: "string" },
    },
  });
  const books = positionals.length ? positionals : BOOKS;
  const ask = await askHook();
  const dir = await Deno.makeTempDir({ prefix: "troupe-bench-quality-" });
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const task = await startTask();
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    env: {
      ...task.env,
      PORT: String(port),
      DATA_DIR: dir,
      LOG_LEVEL: "error",
      DEV_API_KEY: KEY,
      ...UNLIMITED_RATES,
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const results: Quality[] = [];
  try {
    await untilUp(`${base}/api/health`, server);
    for (const book of books) {
      const [layoutPages, plainPages] = await Promise.all([
        pdftotextPages(book, true),
        pdftotextPages(book, false),
      ]);
      const { id, course } = await build(base, book);
      if (values.dump) {
        await Deno.mkdir(values.dump, { recursive: true });
        await Deno.writeTextFile(
          `${values.dump}/${book.split("/").at(-1)}.json`,
          JSON.stringify(course, null, 2),
        );
      }
      const q = judge(book.split("/").at(-1)!, course, layoutPages, plainPages);
      const asked = ask
        ? await ask({ base, headers, courseId: id, pdfPath: book, pages: plainPages, course })
        : null;
      results.push({ ...q, ask: asked });
    }
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* exited */ }
    await server.status;
    await Deno.remove(dir, { recursive: true });
  }
  const pctOf = (x: number) => Number.isNaN(x) ? "n/a" : `${(x * 100).toFixed(1)} %`;
  console.log(
    "\n| book | pages | status | lessons | dup lessons (0) | questions | dup questions (0) | " +
      "questions = key point (0) | bad distractors (0) | furniture kept (0) | control chars (0) | answers on cited page (≥ 97 %) | " +
      "ask precision / recall | search hit@3 |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.book} | ${r.pages} | ${r.status} | ${r.lessons} | ${r.duplicateLessons} | ${r.questions} | ${r.duplicateQuestions} | ${r.questionsRepeatingKeyPoint} | ${r.badDistractors} | ${r.furnitureKept} | ${r.controlChars} | ${
        pctOf(r.answersOnPage)
      } | ${r.ask ? `${pctOf(r.ask.precision)} / ${pctOf(r.ask.recall)}` : "n/a"} | ${
        r.ask ? pctOf(r.ask.hitRateAt3) : "n/a"
      } |`,
    );
  }
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    values.json!,
    JSON.stringify({ at: new Date().toISOString(), results }, null, 2),
  );
}

if (import.meta.main) await main();
