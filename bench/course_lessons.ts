/**
 * Lessons of real books as `course.build` writes them (pages cleaned by `prepareFile`; the
 * outline without back matter, or headings found in the text, cut by position; the local
 * writer; the distinct pass), counting lessons that share a
 * summary and questions that repeat another, exactly (whitespace normalised) or nearly (word
 * 3-shingle Jaccard ≥ 0.9), before and after the distinct pass.
 *
 *   deno run -A bench/course_lessons.ts [--show 3] file.pdf...
 */
import { parseArgs } from "node:util";
import { PdfDocument } from "../actors/courses/pdf.ts";
import { prepareFile } from "../actors/courses/page_clean.ts";
import { headingLines, pageText, passagesBetween, structure } from "../actors/courses/lessons.ts";
import { type DistinctInput, distinctLessons, sameText } from "../actors/courses/distinct.ts";
import { LocalWriter } from "../actors/courses/writer/local.ts";
import { DocumentStats } from "../actors/courses/writer/text.ts";

const { values: args, positionals: files } = parseArgs({
  args: Deno.args,
  options: { show: { type: "string", default: "0" } },
  allowPositionals: true,
});

/** How many of `texts` are the same as another one of them (pairwise). */
function repeated(texts: string[]): number {
  const dup = new Set<number>();
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (sameText(texts[i]!, texts[j]!)) dup.add(i).add(j);
    }
  }
  return dup.size;
}

function counts(lessons: DistinctInput[]) {
  const questions = lessons.flatMap((l) => l.quiz.map((q) => q.question));
  return {
    lessonsSharingSummary: repeated(lessons.map((l) => l.summary)),
    questions: questions.length,
    questionsRepeated: repeated(questions),
  };
}

for (const file of files) {
  const doc = await PdfDocument.open(await Deno.readFile(file));
  const raw = await doc.pages(1, doc.pageCount);
  const outline = await doc.outline();
  await doc.close();
  const t0 = performance.now();
  const prepared = prepareFile(raw, outline);
  const prepareMs = Math.round(performance.now() - t0);
  const { pages } = prepared;
  const stats = new DocumentStats();
  for (const p of pages) stats.add(pageText(p));
  const writer = new LocalWriter();
  const lessons: (DistinctInput & { pages: [number, number] })[] = [];
  const count = (text: string) => text.split(/\s+/).filter(Boolean).length;
  /** Words of the lessons (headings included) and of the pages from the first lesson's on. */
  let covered = 0;
  let total = 0;
  const t2 = performance.now();
  const entries = prepared.outline;
  const headings = headingLines(entries.map((e) => e.title));
  for (const m of structure(entries, pages, prepared.title ?? file)) {
    for (const l of m.lessons) {
      const passages = passagesBetween(pages, l.start, l.end, headings);
      for (const p of passagesBetween(pages, l.start, l.end)) covered += count(p.text);
      const w = await writer.lesson({ title: l.title, passages }, stats);
      lessons.push({ title: l.title, module: m.title, ...w, passages, pages: [l.from, l.to] });
    }
  }
  const writeMs = Math.round(performance.now() - t2);
  const first = lessons.length ? Math.min(...lessons.map((l) => l.pages[0])) : 1;
  for (const p of pages) if (p.page >= first) total += count(pageText(p));
  const before = counts(lessons);
  const t1 = performance.now();
  const fixed = distinctLessons(lessons);
  const distinctMs = Math.round(performance.now() - t1);
  console.log(JSON.stringify({
    file: file.split("/").pop(),
    pages: raw.length,
    outline: outline.length,
    backMatterPages: prepared.backMatter.length,
    furnitureLines: prepared.furniture,
    lessons: lessons.length,
    emptyLessons: lessons.filter((l) => l.passages.length === 0).length,
    joined: lessons.filter((l) => l.title.includes(" / ")).length,
    coverage: Math.round((covered / Math.max(1, total)) * 1000) / 1000,
    words: lessons.map((l) => l.passages.reduce((n, p) => n + p.text.split(/\s+/).length, 0))
      .sort((a, b) => a - b).filter((_, i, a) =>
        i === 0 || i === a.length >> 1 || i === a.length - 1
      ),
    beforeDistinct: before,
    rewritten: fixed,
    after: counts(lessons),
    prepareMs,
    writeMs,
    distinctMs,
  }));
  const show = Number(args.show);
  for (
    const l of lessons.filter((_, i) => i % Math.max(1, Math.floor(lessons.length / show)) === 0)
      .slice(0, show)
  ) {
    console.log(`\n## ${l.module} › ${l.title} (pages ${l.pages.join("-")})`);
    console.log(`summary: ${l.summary}`);
    for (const q of l.quiz.slice(0, 2)) console.log(`Q: ${q.question} [${q.choices[q.answer]}]`);
  }
}
