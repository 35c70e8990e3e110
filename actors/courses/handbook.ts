/**
 * The course handbook as a PDF (`actors/documents/pdf_writer.ts`): a title page, a table of
 * contents with page numbers, one section per module with its lessons (summary, key points,
 * source pages), the quizzes, and an answer key at the end. Any script the shipped fonts
 * cover is printed as it is.
 */
import { rgb } from "pdf-lib";
import { PdfWriter } from "../documents/pdf_writer.ts";
import type { Module } from "./pipeline.ts";

const M = 56;
const INK = rgb(0.12, 0.14, 0.18);
const MUTED = rgb(0.42, 0.45, 0.5);
const ACCENT = rgb(0.13, 0.47, 0.36);
const WHITE = rgb(1, 1, 1);

export interface HandbookInput {
  title: string;
  sources: { fileName: string; pageCount: number | null }[];
  modules: Module[];
  generatedAt?: Date;
}

/**
 * A title that starts with its own number ("1 Introduction", "2.3 Arrays", "A.1 Notes",
 * "Chapter 4 …", "Appendix B …", "IV. …"): the handbook prints it as it is, without a number
 * of its own in front.
 */
const OWN_NUMBER =
  /^(?:(?:(?:Chapter|CHAPTER|Part|PART|Section|SECTION|Appendix|APPENDIX|Lesson|Module)\s+(?:\d+|[A-Z]|[IVXLC]+)\b)|\d+(?:\.\d+)*\.?(?=\s)|[A-Z](?:\.\d+)+\.?(?=\s)|[IVXLC]+\.(?=\s))/u;

export function hasOwnNumber(title: string): boolean {
  return OWN_NUMBER.test(title.trim());
}

/** `title` after `number` ("2.1 Arrays"), unless the title carries a number already. */
export function numbered(number: string, title: string): string {
  return hasOwnNumber(title) ? title.trim() : `${number} ${title.trim()}`;
}

export async function courseHandbook(input: HandbookInput): Promise<Uint8Array<ArrayBuffer>> {
  const w = await PdfWriter.create({
    title: input.title,
    margin: M,
    ink: INK,
    ...(input.generatedAt ? { creationDate: input.generatedAt } : {}),
    onPage: async (w, page) => {
      const number = String(w.pageCount);
      await w.draw(number, {
        page,
        x: w.pageSize[0] / 2 - 4,
        y: 28,
        size: 8,
        color: MUTED,
      });
    },
  });
  const [width, height] = w.pageSize;
  // Title page.
  await w.newPage();
  w.page.drawRectangle({ x: 0, y: height - 260, width, height: 260, color: ACCENT });
  await w.draw("Course handbook", { x: M, y: height - 120, size: 14, color: WHITE });
  w.y = height - 150;
  await w.para(input.title, { size: 26, bold: true, color: WHITE });
  w.y = height - 310;
  const lessons = input.modules.reduce((a, m) => a + m.lessons.length, 0);
  const questions = input.modules.reduce(
    (a, m) => a + m.lessons.reduce((b, l) => b + l.quiz.length, 0),
    0,
  );
  await w.para(`${input.modules.length} modules, ${lessons} lessons, ${questions} quiz questions`, {
    size: 12,
  });
  await w.para("Made from:", { size: 10, color: MUTED });
  for (const s of input.sources) {
    await w.para(`${s.fileName}${s.pageCount ? ` (${s.pageCount} pages)` : ""}`, {
      size: 10,
      indent: 12,
      gap: 2,
    });
  }
  // Contents: a page reserved now, filled once the lessons' pages are known.
  const toc = w.addPage();
  const contents: { title: string; level: number; page: number }[] = [];
  const answers: { n: number; answer: string; page: number }[] = [];
  let n = 0;
  for (const [mi, m] of input.modules.entries()) {
    await w.newPage();
    contents.push({ title: numbered(`${mi + 1}.`, m.title), level: 1, page: w.pageCount });
    await w.para(`Module ${mi + 1}`, { size: 10, color: ACCENT, gap: 2 });
    await w.para(m.title, { size: 20, bold: true, gap: 10 });
    if (m.summary) await w.para(m.summary, { size: 10.5, color: MUTED, gap: 14 });
    for (const [li, l] of m.lessons.entries()) {
      const heading = numbered(`${mi + 1}.${li + 1}`, l.title);
      const page = await w.para(heading, { size: 14, bold: true, gap: 2 });
      contents.push({ title: heading, level: 2, page });
      await w.para(`Source: ${l.fileName}, pages ${l.pages[0]}-${l.pages[1]}`, {
        size: 8.5,
        color: MUTED,
      });
      await w.para(l.summary, { size: 10.5 });
      if (l.keyPoints.length) {
        await w.para("Key points", { size: 10.5, bold: true, gap: 2 });
        for (const k of l.keyPoints) await w.para(`- ${k}`, { size: 10.5, indent: 10, gap: 2 });
        w.y -= 6;
      }
      if (l.quiz.length) {
        await w.para("Quiz", { size: 10.5, bold: true, gap: 2 });
        for (const q of l.quiz) {
          n++;
          await w.para(`${n}. ${q.question}`, { size: 10.5, indent: 4, gap: 2 });
          for (const [ci, choice] of q.choices.entries()) {
            await w.para(`${"ABCD"[ci] ?? "?"}) ${choice}`, { size: 10.5, indent: 18, gap: 1 });
          }
          answers.push({
            n,
            answer: `${"ABCD"[q.answer] ?? "?"}) ${q.choices[q.answer]}`,
            page: q.page,
          });
          w.y -= 6;
        }
      }
      w.y -= 8;
    }
  }
  // Answer key.
  await w.newPage();
  contents.push({ title: "Answer key", level: 1, page: w.pageCount });
  await w.para("Answer key", { size: 18, bold: true, gap: 10 });
  for (const a of answers) {
    await w.para(`${a.n}. ${a.answer}  (source page ${a.page})`, { size: 10.5, gap: 2 });
  }
  if (answers.length === 0) {
    await w.para("This course has no quiz questions.", { size: 10.5, color: MUTED });
  }
  let y = height - M;
  await w.draw("Contents", { page: toc, x: M, y: y - 20, size: 20, bold: true });
  y -= 50;
  for (const e of contents) {
    if (y < M) break; // very long courses: the first page of contents only
    const size = e.level === 1 ? 11.5 : 10;
    const bold = e.level === 1;
    const x = M + (e.level === 1 ? 0 : 14);
    const num = String(e.page);
    const numWidth = await w.measure(num, { size, bold });
    const label = await w.clip(e.title, width - M - x - numWidth - 12, { size, bold });
    await w.draw(label, { page: toc, x, y, size, bold, direction: "ltr" });
    await w.draw(num, { page: toc, x: width - M - numWidth, y, size, bold });
    y -= size * 1.6;
  }
  return await w.save();
}
