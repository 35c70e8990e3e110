/**
 * Text and structure out of a PDF: pages as lines with their font size, the outline
 * (bookmarks) with 1-based physical page numbers, and headings guessed from font size when
 * there is no outline. Errors are `PdfError`s with a stable code: `NOT_PDF`, `ENCRYPTED`,
 * `CORRUPT`, `NO_TEXT`, `PDF_TOO_COMPLEX`.
 *
 * Nothing reads a file before it passes {@link preflight} (`pdf_preflight.ts`): pdf.js
 * inflates and recurses without bounds, so a decompression bomb or an outline nested 100,000
 * deep is refused as `PDF_TOO_COMPLEX` before it gets there.
 *
 * Page text comes from the fast path ({@link FastText}: the content streams read directly,
 * with pdf.js's rules for text items) when it handles the file and the page, else from
 * pdf.js (through `unpdf`), opened only when needed; the outline likewise (`pdf_outline.ts`).
 *
 * Lines follow the content stream's order (how the text was written), breaking where the
 * baseline moves; that keeps the columns of a multi-column page apart when, as usual, each
 * column is written in turn.
 */
import { InputError } from "@troupe/runtime";
import { TooComplex } from "./pdf_objects.ts";
import { destinationTop, type OutlineEntry, readOutline } from "./pdf_outline.ts";
import { type PdfLimits, preflight } from "./pdf_preflight.ts";
import { FastText } from "./pdf_text.ts";

export type { OutlineEntry };

export type { PdfLimits };

export type PdfErrorCode = "NOT_PDF" | "ENCRYPTED" | "CORRUPT" | "NO_TEXT" | "PDF_TOO_COMPLEX";

/** A file that cannot be read: bad input, so its job fails with the code and is not retried. */
export class PdfError extends InputError {
  declare readonly code: PdfErrorCode;

  constructor(code: PdfErrorCode, message: string) {
    super(code, message);
    this.name = "PdfError";
  }
}

/** A {@link TooComplex} structure as the file's error. */
function tooComplex(err: TooComplex): PdfError {
  return new PdfError("PDF_TOO_COMPLEX", `the PDF is too complex to read safely: ${err.message}`);
}

/**
 * The version of what {@link PdfDocument.pages} gives, stored with each page extracted: a
 * page stored by an older version is extracted again. 2: lines carry their `y`.
 */
export const EXTRACTION_VERSION = 2;

/**
 * Positions on a page (a line's `y`, an outline entry's `top`) are in points from the top of
 * the page's view (its crop box within its media box), downwards, in the page's own
 * coordinates (before any `/Rotate`): 0 is the top edge, larger is further down the page.
 */
export interface Line {
  text: string;
  /** Font size (text height) in points. */
  size: number;
  /**
   * The top of the line: points from the page top (see above) to the highest of its items'
   * baseline plus font size, to 0.1 point.
   */
  y: number;
}

export interface PageText {
  /** 1-based physical page number. */
  page: number;
  lines: Line[];
}

/** The `%PDF-` magic bytes (allowing a little leading junk, as readers do). */
export function looksLikePdf(head: Uint8Array): boolean {
  const text = new TextDecoder("latin1").decode(head.subarray(0, 1024));
  return text.includes("%PDF-");
}

/** A text item (pdf.js's, or the fast path's of the same shape). */
export interface PdfJsTextItem {
  str: string;
  transform: number[];
  height: number;
  hasEOL?: boolean;
}

interface PdfJsOutlineNode {
  title: string;
  dest: string | unknown[] | null;
  items: PdfJsOutlineNode[];
}

interface PdfJsDocument {
  numPages: number;
  getPage(n: number): Promise<{
    getTextContent(): Promise<{ items: (PdfJsTextItem | { type: string })[] }>;
    /** `[x0, y0, x1, y1]`: the crop box within the media box. */
    view: number[];
    cleanup(): void;
  }>;
  getOutline(): Promise<PdfJsOutlineNode[] | null>;
  getDestination(name: string): Promise<unknown[] | null>;
  getPageIndex(ref: unknown): Promise<number>;
  loadingTask: { destroy(): Promise<void> };
}

export interface OpenOptions {
  /**
   * Read page text with the fast path where it can (pdf.js for the rest).
   * @default true
   */
  fastText?: boolean;
  /** Bounds the file must keep before anything parses it (see `pdf_preflight.ts`). */
  limits?: PdfLimits;
}

/** An opened PDF; `close()` it when done. */
export class PdfDocument {
  #pdfjs: Promise<PdfJsDocument> | null;
  #opened: PdfJsDocument | null;
  /** Pages read by each path so far (the benchmark reports which one it measured). */
  readonly pagesBy = { fast: 0, pdfjs: 0 };

  private constructor(
    readonly bytes: Uint8Array,
    readonly fast: FastText | null,
    pdfjs: PdfJsDocument | null,
  ) {
    this.#pdfjs = pdfjs ? Promise.resolve(pdfjs) : null;
    this.#opened = pdfjs;
  }

  static async open(
    bytes: Uint8Array,
    { fastText = true, limits }: OpenOptions = {},
  ): Promise<PdfDocument> {
    if (!looksLikePdf(bytes)) throw new PdfError("NOT_PDF", "the file is not a PDF");
    try {
      if ((await preflight(bytes, limits)).encrypted) {
        throw new PdfError(
          "ENCRYPTED",
          "the PDF is encrypted: its streams cannot be checked before it is read",
        );
      }
    } catch (err) {
      if (err instanceof TooComplex) throw tooComplex(err);
      throw err;
    }
    if (fastText) {
      try {
        return new PdfDocument(bytes, FastText.open(bytes), null);
      } catch (err) {
        if (err instanceof TooComplex) throw tooComplex(err);
        // Not a file the fast path reads (damaged, unusual): pdf.js decides.
      }
    }
    return new PdfDocument(bytes, null, await openPdfJs(bytes));
  }

  get pageCount(): number {
    return this.fast ? this.fast.pageCount : this.#opened!.numPages;
  }

  /** pdf.js's document, opened on first use. */
  async #doc(): Promise<PdfJsDocument> {
    this.#pdfjs ??= openPdfJs(this.bytes);
    return this.#opened = await this.#pdfjs;
  }

  /** Pages `from..to` (1-based, inclusive) as lines. */
  async pages(from: number, to: number): Promise<PageText[]> {
    if (!this.fast) await this.#doc();
    const out: PageText[] = [];
    for (let n = Math.max(1, from); n <= Math.min(to, this.pageCount); n++) {
      if (this.fast) {
        let items: PdfJsTextItem[] | null = null;
        try {
          items = this.fast.items(n);
        } catch (err) {
          if (err instanceof TooComplex) throw tooComplex(err);
          // A page the fast path does not handle: pdf.js reads it.
        }
        if (items) {
          this.pagesBy.fast++;
          out.push({ page: n, lines: toLines(items, this.fast.file.pages[n - 1]!.view[3]) });
          continue;
        }
      }
      const doc = await this.#doc();
      try {
        const page = await doc.getPage(n);
        const content = await page.getTextContent();
        out.push({
          page: n,
          lines: toLines(content.items.filter(isTextItem), page.view[3] ?? 0),
        });
        page.cleanup();
        this.pagesBy.pdfjs++;
      } catch (err) {
        throw new PdfError(
          "CORRUPT",
          `page ${n} cannot be read: ${(err as Error)?.message ?? err}`,
        );
      }
    }
    return out;
  }

  /** The bookmarks, flattened in order, with levels and physical pages; [] when none. */
  async outline(): Promise<OutlineEntry[]> {
    if (this.fast) {
      try {
        return readOutline(this.fast.file);
      } catch {
        // An outline the fast path does not read: pdf.js reads it.
      }
    }
    return await this.outlineByPdfJs();
  }

  /** {@link outline} as pdf.js reads it (the fast path's reference in tests). */
  async outlineByPdfJs(): Promise<OutlineEntry[]> {
    let nodes: PdfJsOutlineNode[] | null;
    let doc: PdfJsDocument;
    try {
      doc = await this.#doc();
      nodes = await doc.getOutline();
    } catch {
      return [];
    }
    const out: OutlineEntry[] = [];
    // Depth first, in order, with a stack of its own (no recursion, however deep the outline).
    const stack: { node: PdfJsOutlineNode; level: number }[] = (nodes ?? []).map((node) => ({
      node,
      level: 1,
    })).reverse();
    while (stack.length) {
      const { node, level } = stack.pop()!;
      const at = await this.#pageOf(doc, node.dest);
      if (at !== null && node.title.trim()) {
        const top = await this.#topOf(doc, at.page, at.dest);
        out.push({ title: node.title.trim(), page: at.page, level, top });
      }
      for (let i = (node.items?.length ?? 0) - 1; i >= 0; i--) {
        stack.push({ node: node.items[i]!, level: level + 1 });
      }
    }
    return out;
  }

  async #pageOf(
    doc: PdfJsDocument,
    dest: PdfJsOutlineNode["dest"],
  ): Promise<{ page: number; dest: unknown[] } | null> {
    try {
      const explicit = typeof dest === "string" ? await doc.getDestination(dest) : dest;
      const ref = explicit?.[0];
      if (!explicit || ref === undefined || ref === null) return null;
      if (typeof ref === "number") return { page: ref + 1, dest: explicit };
      return { page: (await doc.getPageIndex(ref)) + 1, dest: explicit };
    } catch {
      return null;
    }
  }

  /** The destination's top on its page (see {@link OutlineEntry.top}). */
  async #topOf(doc: PdfJsDocument, page: number, dest: unknown[]): Promise<number | null> {
    try {
      const p = await doc.getPage(page);
      return destinationTop(dest, p.view[3] ?? 0);
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    const doc = this.#pdfjs;
    this.#pdfjs = null;
    if (doc) await (await doc.catch(() => null))?.loadingTask.destroy();
  }
}

async function openPdfJs(bytes: Uint8Array): Promise<PdfJsDocument> {
  try {
    // pdf.js takes ownership of the buffer: give it a copy.
    // Text only: no font faces to build (they only serve drawing), no console noise.
    // pdf.js loads with the first PDF, not with the app.
    const { getDocumentProxy } = await import("unpdf");
    return await getDocumentProxy(new Uint8Array(bytes), {
      useSystemFonts: false,
      stopAtErrors: false,
      disableFontFace: true,
      verbosity: 0,
    }) as unknown as PdfJsDocument;
  } catch (err) {
    const name = (err as Error)?.name ?? "";
    if (name === "PasswordException" || /password/i.test(String((err as Error)?.message))) {
      throw new PdfError("ENCRYPTED", "the PDF is encrypted (password protected)");
    }
    throw new PdfError("CORRUPT", `the PDF cannot be read: ${(err as Error)?.message ?? err}`);
  }
}

function isTextItem(item: PdfJsTextItem | { type: string }): item is PdfJsTextItem {
  return typeof (item as PdfJsTextItem).str === "string";
}

/**
 * Joins text items into lines: a new line where the baseline moves or an item ends one.
 * `pageTop` is the page view's top edge in user space (its `y1`): a line's `y` is measured
 * down from it.
 */
export function toLines(items: PdfJsTextItem[], pageTop: number): Line[] {
  const lines: Line[] = [];
  let text = "";
  let size = 0;
  let y: number | null = null;
  let lastEnd: number | null = null;
  /** The highest top (baseline + size, user space) of the line's items with text. */
  let high = -Infinity;
  const flush = () => {
    const t = text.replace(/\s+/g, " ").trim();
    if (t) {
      const top = Math.round((pageTop - (high === -Infinity ? (y ?? pageTop) : high)) * 10) / 10;
      lines.push({ text: t, size: Math.round(size * 10) / 10, y: top || 0 });
    }
    text = "";
    size = 0;
    lastEnd = null;
    high = -Infinity;
  };
  for (const item of items) {
    const itemY = item.transform[5] ?? 0;
    const itemX = item.transform[4] ?? 0;
    const itemSize = Math.abs(item.transform[3] ?? 0) || item.height || 0;
    if (y !== null && Math.abs(itemY - y) > Math.max(2, itemSize * 0.5)) flush();
    if (text && lastEnd !== null && itemX - lastEnd > itemSize * 0.15 && !/\s$/.test(text)) {
      text += " ";
    }
    text += item.str;
    size = Math.max(size, item.str.trim() ? itemSize : 0);
    if (item.str.trim()) high = Math.max(high, itemY + itemSize);
    y = itemY;
    lastEnd = itemX + item.str.length * itemSize * 0.5;
    if (item.hasEOL) flush();
  }
  flush();
  return lines;
}

/** A word of prose between spaces: letters, maybe punctuation after (not code's `\\newif{x}`). */
const PROSE_WORD = /^[\p{L}][\p{Ll}'’-]+[,.;:!?)]?$/u;

const bodySizes = new WeakMap<PageText[], number>();

/**
 * The font size most prose is set in (by words, so that listings in a smaller size do not
 * pass for the body); 0 when there is no text. Remembered per list: a list is not changed
 * once read.
 */
export function bodySize(pages: PageText[]): number {
  const known = bodySizes.get(pages);
  if (known !== undefined) return known;
  const weight = new Map<number, number>();
  for (const p of pages) {
    for (const l of p.lines) {
      let words = 0;
      for (const w of l.text.split(" ")) if (PROSE_WORD.test(w)) words++;
      weight.set(l.size, (weight.get(l.size) ?? 0) + words + 0.01 * l.text.length);
    }
  }
  const size = [...weight].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
  bodySizes.set(pages, size);
  return size;
}

/**
 * How deep a heading's number puts it: "2 Usage" and "Appendix B ..." 1, "2.3 ..." and
 * "B.1 ..." 2, "2.3.1 ..." 3; null when it has none.
 */
export function numberingLevel(text: string): number | null {
  if (/^(?:appendix|chapter|part)\s+(?:[A-Z]|\d{1,2}|[IVXLC]{1,5})\b/i.test(text)) return 1;
  const m = text.match(/^(?:\d{1,2}|[A-Z](?=\.\d))((?:\.\d{1,2})*)\.?\s+(?=[\p{L}"“(])/u);
  return m ? 1 + (m[1]!.match(/\./g)?.length ?? 0) : null;
}

/** Lines that begin the part of a title page after which its body starts. */
const TITLE_STOP = /^(?:abstract|summary|(?:table\s+of\s+)?contents)$/i;

/**
 * The title lines of the first page with text (title, authors, dates, affiliations): its
 * leading lines when the first is set larger than any line elsewhere, up to the first
 * numbered heading, abstract or contents, or the first run of three body-size lines; the
 * whole page when it has next to no body text (a title page).
 */
export function titleBlock(pages: PageText[]): { page: number; lines: number[] } | null {
  const body = bodySize(pages);
  const first = pages.find((p) => p.lines.length > 0);
  if (!first || !body) return null;
  const lines = first.lines;
  const larger = (l: Line) => l.size > body * 1.05;
  let elsewhere = 0;
  for (const p of pages) {
    if (p === first) continue;
    for (const l of p.lines) elsewhere = Math.max(elsewhere, l.size);
  }
  if (!larger(lines[0]!) || lines[0]!.size <= elsewhere + 0.05) return null;
  const bodyChars = lines.filter((l) => !larger(l)).reduce((n, l) => n + l.text.length, 0);
  const more = pages.some((p) => p !== first && p.lines.length > 0);
  if (more && bodyChars < 300) return { page: first.page, lines: lines.map((_, i) => i) };
  let end = 1;
  while (end < Math.min(lines.length, 12)) {
    const l = lines[end]!;
    if (larger(l) && numberingLevel(l.text) !== null) break;
    if (TITLE_STOP.test(l.text.trim())) break;
    if (lines.slice(end, end + 3).filter((x) => !larger(x)).length === 3) break;
    end++;
  }
  return { page: first.page, lines: Array.from({ length: end }, (_, i) => i) };
}

/** The document's title: the largest lines of its {@link titleBlock}; null without one. */
export function documentTitle(pages: PageText[]): string | null {
  const block = titleBlock(pages);
  if (!block) return null;
  const page = pages.find((p) => p.page === block.page)!.lines;
  // Words, not a logo drawn in letters ("symptotesymptote...").
  const lines = block.lines.map((i) => page[i]!).filter((l) => !/\S{31,}/.test(l.text));
  const top = Math.max(...lines.map((l) => l.size));
  const title = lines.filter((l) => l.size >= top - 0.05)
    .map((l) => l.text).join(" ").replace(/\s+/g, " ").trim();
  return title ? title.slice(0, 200) : null;
}

/**
 * Headings found in the text when a PDF has no outline. A heading is set clearly larger
 * than the body text ({@link bodySize}), is short, does not end like a sentence, and has
 * body text under it (or a smaller heading); lines of the same size in a row are one
 * heading. Its number ("2", "2.3", "2.3.1", "Appendix B") gives its level; when the document
 * numbers its headings, an unnumbered line is a heading only in a size numbered headings
 * use (so "Preface" is, a figure's large label is not), at their level. Without numbers,
 * the largest size is level 1, the next 2, the rest 3. The title page's lines
 * ({@link titleBlock}) are the document's title, not headings. Each starts where its
 * first line is (`top` is that line's `y`).
 */
export function detectHeadings(pages: PageText[]): OutlineEntry[] {
  const body = bodySize(pages);
  if (!body) return [];
  const title = titleBlock(pages);
  const skip = new Set(title?.lines.map((i) => `${title.page}:${i}`));
  const stream = pages.flatMap((p) =>
    p.lines.map((l, i) => ({ ...l, page: p.page, key: `${p.page}:${i}` }))
  ).filter((l) => !skip.has(l.key));
  const candidate = (l: Line) =>
    l.size >= body * 1.1 && l.text.length <= 120 && /\p{L}/u.test(l.text) &&
    (!/[.,;:]$/.test(l.text) || (/\.$/.test(l.text) && numberingLevel(l.text) !== null)) &&
    !/^[^\p{L}]*\p{L}[^\p{L}]*$/u.test(l.text);
  const heads: {
    title: string;
    page: number;
    top: number;
    size: number;
    level: number | null;
  }[] = [];
  for (let i = 0; i < stream.length; i++) {
    const l = stream[i]!;
    if (!candidate(l)) continue;
    let text = l.text;
    let j = i + 1;
    while (
      j < stream.length && stream[j]!.page === l.page && candidate(stream[j]!) &&
      Math.abs(stream[j]!.size - l.size) < 0.05 && numberingLevel(stream[j]!.text) === null &&
      text.length + stream[j]!.text.length < 120
    ) text += ` ${stream[j++]!.text}`;
    const level = numberingLevel(text);
    const next = stream[j];
    const under = next !== undefined && (
      (!candidate(next) && next.size < body * 1.1 && next.text.length > 1) ||
      (candidate(next) && (next.size < l.size - 0.05 ||
        (level !== null && (numberingLevel(next.text) ?? 0) > level)))
    );
    if (under) heads.push({ title: text, page: l.page, top: l.y, size: l.size, level });
    i = j - 1;
  }
  const numbered = heads.filter((h) => h.level !== null);
  if (numbered.length >= 2) {
    const levelOf = (size: number) => {
      const depths = numbered.filter((h) => Math.abs(h.size - size) < 0.3).map((h) => h.level!);
      if (!depths.length) return null;
      const count = new Map<number, number>();
      for (const d of depths) count.set(d, (count.get(d) ?? 0) + 1);
      return [...count].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
    };
    return heads.flatMap((h) => {
      const level = h.level ?? levelOf(h.size);
      return level === null ? [] : [{ title: h.title, page: h.page, level, top: h.top }];
    });
  }
  const sizes = [...new Set(heads.map((h) => h.size))].sort((a, b) => b - a);
  return heads.map((h) => ({
    title: h.title,
    page: h.page,
    level: Math.min(3, sizes.indexOf(h.size) + 1),
    top: h.top,
  }));
}
