/**
 * The course handbook as a PDF (pdf-lib): a title page, a table of contents with page
 * numbers, one section per module with its lessons (summary, key points, source pages), the
 * quizzes, and an answer key at the end. Helvetica (WinAnsi): other characters print as `?`.
 */
import { PDFDocument, type PDFFont, type PDFPage, rgb, StandardFonts } from "pdf-lib";
import { printable } from "../datasets/report.ts";
import type { Module } from "./pipeline.ts";

const A4: [number, number] = [595.28, 841.89];
const M = 56;
const INK = rgb(0.12, 0.14, 0.18);
const MUTED = rgb(0.42, 0.45, 0.5);
const ACCENT = rgb(0.13, 0.47, 0.36);

export interface HandbookInput {
  title: string;
  sources: { fileName: string; pageCount: number | null }[];
  modules: Module[];
  generatedAt?: Date;
}

class Writer {
  page!: PDFPage;
  y = 0;
  pages = 0;
  constructor(readonly doc: PDFDocument, readonly font: PDFFont, readonly bold: PDFFont) {}

  newPage(): void {
    this.page = this.doc.addPage(A4);
    this.pages++;
    this.y = A4[1] - M;
    this.page.drawText(String(this.doc.getPageCount()), {
      x: A4[0] / 2 - 4,
      y: 28,
      size: 8,
      font: this.font,
      color: MUTED,
    });
  }

  /** Writes wrapped text; returns the page number it started on. */
  para(
    text: string,
    { size = 10.5, font = this.font, color = INK, indent = 0, gap = 6 } = {},
  ): number {
    const width = A4[0] - 2 * M - indent;
    const words = printable(text, font).split(/\s+/).filter(Boolean);
    let line = "";
    const lines: string[] = [];
    for (const w of words) {
      const next = line ? `${line} ${w}` : w;
      if (font.widthOfTextAtSize(next, size) > width && line) {
        lines.push(line);
        line = w;
      } else line = next;
    }
    if (line) lines.push(line);
    if (this.y - size * 1.35 < M) this.newPage();
    const start = this.doc.getPageCount();
    for (const l of lines) {
      if (this.y - size * 1.35 < M) this.newPage();
      this.page.drawText(l, { x: M + indent, y: this.y - size, size, font, color });
      this.y -= size * 1.35;
    }
    this.y -= gap;
    return start;
  }
}

export async function courseHandbook(input: HandbookInput): Promise<Uint8Array<ArrayBuffer>> {
  const doc = await PDFDocument.create();
  doc.setTitle(printable(input.title));
  doc.setProducer("Troupe");
  const w = new Writer(
    doc,
    await doc.embedFont(StandardFonts.Helvetica),
    await doc.embedFont(StandardFonts.HelveticaBold),
  );
  // Title page.
  w.newPage();
  w.page.drawRectangle({ x: 0, y: A4[1] - 260, width: A4[0], height: 260, color: ACCENT });
  w.page.drawText("Course handbook", {
    x: M,
    y: A4[1] - 120,
    size: 14,
    font: w.font,
    color: rgb(1, 1, 1),
  });
  w.y = A4[1] - 150;
  w.para(input.title, { size: 26, font: w.bold, color: rgb(1, 1, 1) });
  w.y = A4[1] - 310;
  const lessons = input.modules.reduce((a, m) => a + m.lessons.length, 0);
  const questions = input.modules.reduce(
    (a, m) => a + m.lessons.reduce((b, l) => b + l.quiz.length, 0),
    0,
  );
  w.para(`${input.modules.length} modules, ${lessons} lessons, ${questions} quiz questions`, {
    size: 12,
  });
  w.para("Made from:", { size: 10, color: MUTED });
  for (const s of input.sources) {
    w.para(`${s.fileName}${s.pageCount ? ` (${s.pageCount} pages)` : ""}`, {
      size: 10,
      indent: 12,
      gap: 2,
    });
  }
  // Contents: a page reserved now, filled once the lessons' pages are known.
  const toc = doc.addPage(A4);
  const contents: { title: string; level: number; page: number }[] = [];
  const answers: { n: number; answer: string; page: number }[] = [];
  let n = 0;
  for (const [mi, m] of input.modules.entries()) {
    w.newPage();
    contents.push({ title: `${mi + 1}. ${m.title}`, level: 1, page: doc.getPageCount() });
    w.para(`Module ${mi + 1}`, { size: 10, color: ACCENT, gap: 2 });
    w.para(m.title, { size: 20, font: w.bold, gap: 10 });
    if (m.summary) w.para(m.summary, { color: MUTED, gap: 14 });
    for (const [li, l] of m.lessons.entries()) {
      const page = w.para(`${mi + 1}.${li + 1} ${l.title}`, { size: 14, font: w.bold, gap: 2 });
      contents.push({ title: `${mi + 1}.${li + 1} ${l.title}`, level: 2, page });
      w.para(`Source: ${l.fileName}, pages ${l.pages[0]}-${l.pages[1]}`, {
        size: 8.5,
        color: MUTED,
      });
      w.para(l.summary);
      if (l.keyPoints.length) {
        w.para("Key points", { size: 10.5, font: w.bold, gap: 2 });
        for (const k of l.keyPoints) w.para(`- ${k}`, { indent: 10, gap: 2 });
        w.y -= 6;
      }
      if (l.quiz.length) {
        w.para("Quiz", { size: 10.5, font: w.bold, gap: 2 });
        for (const q of l.quiz) {
          n++;
          w.para(`${n}. ${q.question}`, { indent: 4, gap: 2 });
          q.choices.forEach((choice, ci) =>
            w.para(`${"ABCD"[ci] ?? "?"}) ${choice}`, { indent: 18, gap: 1 })
          );
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
  w.newPage();
  contents.push({ title: "Answer key", level: 1, page: doc.getPageCount() });
  w.para("Answer key", { size: 18, font: w.bold, gap: 10 });
  for (const a of answers) w.para(`${a.n}. ${a.answer}  (source page ${a.page})`, { gap: 2 });
  if (answers.length === 0) w.para("This course has no quiz questions.", { color: MUTED });
  let y = A4[1] - M;
  toc.drawText("Contents", { x: M, y: y - 20, size: 20, font: w.bold, color: INK });
  y -= 50;
  for (const e of contents) {
    if (y < M) break; // very long courses: the first page of contents only
    const size = e.level === 1 ? 11.5 : 10;
    const font = e.level === 1 ? w.bold : w.font;
    const x = M + (e.level === 1 ? 0 : 14);
    const label = printable(e.title, font).slice(0, 80);
    toc.drawText(label, { x, y, size, font, color: INK });
    const num = String(e.page);
    toc.drawText(num, {
      x: A4[0] - M - font.widthOfTextAtSize(num, size),
      y,
      size,
      font,
      color: INK,
    });
    y -= size * 1.6;
  }
  return new Uint8Array(await doc.save());
}
