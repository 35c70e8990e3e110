/**
 * Page text extraction behind one port: in this thread, or in a pool of workers so that the
 * extract messages of a course (20 pages each) use every core. Errors keep their `PdfError`
 * code either way.
 *
 * Uploads are untrusted: either way a file is checked against its limits before it is parsed
 * (`pdf_preflight.ts`), and in workers it is also parsed under a heap and a time limit. Over
 * any, it fails as `PDF_TOO_COMPLEX`, an input error, so its job is not retried.
 *
 * The extract messages of one file arrive one range after another, so both keep the PDFs
 * they opened, by key (the file's SHA-256), for a few seconds ({@link OpenPdfs}): opening a
 * 300-page PDF again for each range of 20 pages would cost about as much as reading them.
 */
import {
  COMPUTE_STALL_MS,
  type SpawnerOption,
  workerError,
  WorkerLimitError,
  WorkerPool,
} from "@troupe/runtime/workers";
import {
  type OutlineEntry,
  type PageText,
  PdfDocument,
  PdfError,
  type PdfErrorCode,
  type PdfLimits,
} from "./pdf.ts";
import { type PreparedFile, prepareText } from "./page_clean.ts";

/** A PDF's bytes, or how to read them (called only when the document is not already open). */
export type PdfSource = Uint8Array | (() => Promise<Uint8Array>);

/** What a course plans its extraction with: the page count and the bookmarks. */
export interface PdfStructure {
  pages: number;
  outline: OutlineEntry[];
}

export interface PageExtractor {
  /**
   * The page count and outline of the PDF (a `PdfError` when it is not one that can be read).
   * `key` as for {@link pages}: the document stays open for the ranges that follow.
   */
  structure(source: PdfSource, key?: string): Promise<PdfStructure>;
  /**
   * Pages `from..to` (1-based, inclusive) of the PDF. `key` names the file (its SHA-256):
   * the document stays open, by key, for the next range.
   */
  pages(source: PdfSource, from: number, to: number, key?: string): Promise<PageText[]>;
  /**
   * A file's stored pages (JSON text, see `prepareText`) cleaned and structured for a course,
   * `null` when no page has text: in a worker when the extractor has them, so a course build
   * does not hold the main thread for the whole book. Absent: the caller does it itself.
   */
  prepare?(pages: string, outline: OutlineEntry[]): Promise<PreparedFile | null>;
  close(): void;
}

const bytesOf = (source: PdfSource) => typeof source === "function" ? source() : source;

interface OpenPdf {
  doc: Promise<PdfDocument>;
  users: number;
  timer?: ReturnType<typeof setTimeout>;
  dropped?: boolean;
}

/**
 * Opened PDFs by key: at most `size` stay open once unused (least recently used closed
 * first), each for `keepMs` after its last use. Documents in use are never closed under
 * their users; one that failed a read is dropped, so the next use opens it afresh.
 */
export class OpenPdfs {
  readonly #open = new Map<string, OpenPdf>();

  /** `limits`: what a file must keep to be opened (see `pdf_preflight.ts`). */
  constructor(readonly size = 2, readonly keepMs = 5_000, readonly limits: PdfLimits = {}) {}

  /** How many documents are open (in use or kept). */
  get count(): number {
    return this.#open.size;
  }

  async use<T>(
    key: string,
    source: PdfSource,
    read: (doc: PdfDocument) => Promise<T>,
  ): Promise<T> {
    let entry = this.#open.get(key);
    if (entry) this.#open.delete(key); // re-inserted below: the map's order is recency
    else {
      const open = (bytes: Uint8Array) => PdfDocument.open(bytes, { limits: this.limits });
      entry = { doc: Promise.resolve(source).then(bytesOf).then(open), users: 0 };
    }
    this.#open.set(key, entry);
    clearTimeout(entry.timer);
    entry.users++;
    try {
      return await read(await entry.doc);
    } catch (err) {
      this.#drop(key, entry);
      throw err;
    } finally {
      entry.users--;
      if (entry.dropped) {
        if (entry.users === 0) closeQuietly(entry);
      } else if (entry.users === 0) {
        const timer = setTimeout(() => this.#drop(key, entry), this.keepMs);
        Deno.unrefTimer(timer); // a kept document never holds the process open
        entry.timer = timer;
      }
      this.#evict();
    }
  }

  /** Closes every document (those in use once their reads end). */
  close(): void {
    for (const [key, entry] of [...this.#open]) this.#drop(key, entry);
  }

  #drop(key: string, entry: OpenPdf): void {
    if (this.#open.get(key) === entry) this.#open.delete(key);
    clearTimeout(entry.timer);
    if (entry.dropped) return;
    entry.dropped = true;
    if (entry.users === 0) closeQuietly(entry);
  }

  /** Closes the least recently used unused documents beyond `size`. */
  #evict(): void {
    const unused = [...this.#open].filter(([, e]) => e.users === 0);
    const excess = Math.max(0, unused.length - this.size);
    for (const [key, entry] of unused.slice(0, excess)) this.#drop(key, entry);
  }
}

function closeQuietly(entry: OpenPdf): void {
  entry.doc.then((d) => d.close()).catch(() => {});
}

/** Reads `source` as a document: through `open` when there is a key, else opened and closed here. */
async function withDocument<T>(
  open: OpenPdfs,
  source: PdfSource,
  key: string | undefined,
  read: (doc: PdfDocument) => Promise<T>,
): Promise<T> {
  if (key) return await open.use(key, source, read);
  const pdf = await PdfDocument.open(await bytesOf(source), { limits: open.limits });
  try {
    return await read(pdf);
  } finally {
    await pdf.close();
  }
}

/** Pages `from..to` of `source` (see {@link withDocument}). */
export function readPages(
  open: OpenPdfs,
  source: PdfSource,
  from: number,
  to: number,
  key?: string,
): Promise<PageText[]> {
  return withDocument(open, source, key, (doc) => doc.pages(from, to));
}

/** The page count and outline of `source` (see {@link withDocument}). */
export function readStructure(
  open: OpenPdfs,
  source: PdfSource,
  key?: string,
): Promise<PdfStructure> {
  return withDocument(open, source, key, async (doc) => ({
    pages: doc.pageCount,
    outline: await doc.outline(),
  }));
}

/** What an extractor works within. */
export interface ExtractLimits extends PdfLimits {
  /** A worker's heap limit in MB (workers only). @default 1024 */
  workerHeapMb?: number;
  /** A task's time limit in a worker, in ms (workers only). @default 120000 */
  taskTimeoutMs?: number;
  /** Starts the workers in another thread (workers only). @default this thread */
  spawner?: SpawnerOption;
}

/**
 * Extracts in the calling thread (Deno Deploy, tests, `EXTRACT_WORKERS=0`). With no worker to
 * stop, the file's bounds are all there is: it is checked before it is read (`limits`).
 */
export class InlineExtractor implements PageExtractor {
  readonly #open: OpenPdfs;

  constructor(limits: PdfLimits = {}) {
    this.#open = new OpenPdfs(undefined, undefined, limits);
  }

  structure(source: PdfSource, key?: string): Promise<PdfStructure> {
    return readStructure(this.#open, source, key);
  }

  pages(source: PdfSource, from: number, to: number, key?: string): Promise<PageText[]> {
    return readPages(this.#open, source, from, to, key);
  }

  prepare(pages: string, outline: OutlineEntry[]): Promise<PreparedFile | null> {
    return Promise.resolve(prepareText(pages, outline));
  }

  close(): void {
    this.#open.close();
  }
}

const CODES = new Set<PdfErrorCode>([
  "NOT_PDF",
  "ENCRYPTED",
  "CORRUPT",
  "NO_TEXT",
  "PDF_TOO_COMPLEX",
]);

/**
 * Extracts in `size` workers (started on first use), each under a heap and a time limit: a file
 * that takes a worker past either fails as `PDF_TOO_COMPLEX`, and the worker is replaced.
 */
export class WorkerExtractor implements PageExtractor {
  readonly #pool: WorkerPool;
  readonly #limits: PdfLimits;

  constructor(
    size: number,
    { workerHeapMb = 1024, taskTimeoutMs = 120_000, spawner, ...limits }: ExtractLimits = {},
    url = new URL("./extract_worker.ts", import.meta.url),
  ) {
    this.#limits = limits;
    this.#pool = new WorkerPool(url, size, {
      ...(spawner ? { spawner } : {}),
      heapMb: workerHeapMb,
      taskTimeoutMs,
      stallMs: COMPUTE_STALL_MS, // reading a PDF is computation only
      toError: (e) => {
        if (e.name === "PdfError" && CODES.has(e.code as PdfErrorCode)) {
          return new PdfError(e.code as PdfErrorCode, e.message);
        }
        return workerError(e);
      },
    });
  }

  async structure(source: PdfSource, key?: string): Promise<PdfStructure> {
    const bytes = await bytesOf(source);
    return await this.#run<PdfStructure>("structure", [bytes, key, this.#limits]);
  }

  async pages(source: PdfSource, from: number, to: number, key?: string): Promise<PageText[]> {
    // The bytes go along every time (a range may land on a worker that has not opened the
    // file); copied to the worker (structured clone), so the caller keeps its bytes.
    const bytes = await bytesOf(source);
    return await this.#run<PageText[]>("pages", [bytes, from, to, key, this.#limits]);
  }

  async prepare(pages: string, outline: OutlineEntry[]): Promise<PreparedFile | null> {
    return await this.#run<PreparedFile | null>("prepare", [pages, outline]);
  }

  async #run<T>(method: string, args: unknown[]): Promise<T> {
    try {
      return await this.#pool.run<T>(method, args);
    } catch (err) {
      if (!(err instanceof WorkerLimitError)) throw err;
      throw new PdfError(
        "PDF_TOO_COMPLEX",
        `the PDF is too complex to read safely: ${err.message}`,
      );
    }
  }

  close(): void {
    this.#pool.close();
  }
}

/** Workers when asked for (size ≥ 1) and available; else this thread. */
export function pageExtractor(workers: number, limits: ExtractLimits = {}): PageExtractor {
  if (workers < 1 || typeof Worker === "undefined") {
    const { workerHeapMb: _, taskTimeoutMs: __, spawner: ___, ...pdf } = limits;
    return new InlineExtractor(pdf);
  }
  return new WorkerExtractor(workers, limits);
}
