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
import { getDocumentProxy } from "unpdf";
import { InputError } from "../runtime/errors.ts";
import { TooComplex } from "./pdf_objects.ts";
import { readOutline } from "./pdf_outline.ts";
import { type PdfLimits, preflight } from "./pdf_preflight.ts";
import { FastText } from "./pdf_text.ts";

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

export interface Line {
  text: string;
  /** Font size (text height) in points. */
  size: number;
}

export interface PageText {
  /** 1-based physical page number. */
  page: number;
  lines: Line[];
}

export interface OutlineEntry {
  title: string;
  /** 1-based physical page. */
  page: number;
  /** 1 = top level. */
  level: number;
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
          out.push({ page: n, lines: toLines(items) });
          continue;
        }
      }
      const doc = await this.#doc();
      try {
        const page = await doc.getPage(n);
        const content = await page.getTextContent();
        out.push({ page: n, lines: toLines(content.items.filter(isTextItem)) });
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
      const page = await this.#pageOf(doc, node.dest);
      if (page !== null && node.title.trim()) {
        out.push({ title: node.title.trim(), page, level });
      }
      for (let i = (node.items?.length ?? 0) - 1; i >= 0; i--) {
        stack.push({ node: node.items[i]!, level: level + 1 });
      }
    }
    return out;
  }

  async #pageOf(doc: PdfJsDocument, dest: PdfJsOutlineNode["dest"]): Promise<number | null> {
    try {
      const explicit = typeof dest === "string" ? await doc.getDestination(dest) : dest;
      const ref = explicit?.[0];
      if (ref === undefined || ref === null) return null;
      if (typeof ref === "number") return ref + 1;
      return (await doc.getPageIndex(ref)) + 1;
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

/** Joins text items into lines: a new line where the baseline moves or an item ends one. */
export function toLines(items: PdfJsTextItem[]): Line[] {
  const lines: Line[] = [];
  let text = "";
  let size = 0;
  let y: number | null = null;
  let lastEnd: number | null = null;
  const flush = () => {
    const t = text.replace(/\s+/g, " ").trim();
    if (t) lines.push({ text: t, size: Math.round(size * 10) / 10 });
    text = "";
    size = 0;
    lastEnd = null;
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
    y = itemY;
    lastEnd = itemX + item.str.length * itemSize * 0.5;
    if (item.hasEOL) flush();
  }
  flush();
  return lines;
}

/**
 * Headings found from font size when a PDF has no outline: lines clearly larger than the
 * body text (the most common size), short, not ending like a sentence. The largest size is
 * level 1, the next level 2.
 */
export function detectHeadings(pages: PageText[]): OutlineEntry[] {
  const weight = new Map<number, number>();
  for (const p of pages) {
    for (const l of p.lines) weight.set(l.size, (weight.get(l.size) ?? 0) + l.text.length);
  }
  const body = [...weight].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
  if (!body) return [];
  const candidates = pages.flatMap((p) =>
    p.lines.filter((l) =>
      l.size >= body * 1.2 && l.text.length <= 120 && /\p{L}/u.test(l.text) &&
      !/[.,;:]$/.test(l.text)
    ).map((l) => ({ ...l, page: p.page }))
  );
  const sizes = [...new Set(candidates.map((c) => c.size))].sort((a, b) => b - a);
  return candidates.map((c) => ({
    title: c.text,
    page: c.page,
    level: Math.min(2, sizes.indexOf(c.size) + 1),
  }));
}
