/**
 * Page text extraction behind one port: in this thread, or in a pool of workers so that the
 * extract messages of a course (20 pages each) use every core. Errors keep their `PdfError`
 * code either way.
 */
import { workerError, WorkerPool } from "../runtime/worker_pool.ts";
import { type PageText, PdfDocument, PdfError, type PdfErrorCode } from "./pdf.ts";

export interface PageExtractor {
  /**
   * Pages `from..to` (1-based, inclusive) of the PDF in `bytes`. `key` names the file (its
   * SHA-256): a worker keeps the last document it opened, by key, for the next range.
   */
  pages(bytes: Uint8Array, from: number, to: number, key?: string): Promise<PageText[]>;
  close(): void;
}

/** Extracts in the calling thread (Deno Deploy, tests, `EXTRACT_WORKERS=0`). */
export class InlineExtractor implements PageExtractor {
  async pages(bytes: Uint8Array, from: number, to: number): Promise<PageText[]> {
    const pdf = await PdfDocument.open(bytes);
    try {
      return await pdf.pages(from, to);
    } finally {
      await pdf.close();
    }
  }
  close(): void {}
}

const CODES = new Set<PdfErrorCode>(["NOT_PDF", "ENCRYPTED", "CORRUPT", "NO_TEXT"]);

/** Extracts in `size` workers (started on first use). */
export class WorkerExtractor implements PageExtractor {
  readonly #pool: WorkerPool;

  constructor(size: number) {
    this.#pool = new WorkerPool(new URL("./extract_worker.ts", import.meta.url), size, (e) => {
      if (e.name === "PdfError" && CODES.has(e.code as PdfErrorCode)) {
        return new PdfError(e.code as PdfErrorCode, e.message);
      }
      return workerError(e);
    });
  }

  pages(bytes: Uint8Array, from: number, to: number, key?: string): Promise<PageText[]> {
    // Copied to the worker (structured clone), so the caller keeps its bytes.
    return this.#pool.run<PageText[]>("pages", [bytes, from, to, key]);
  }

  close(): void {
    this.#pool.close();
  }
}

/** Workers when asked for (size ≥ 1) and available; else this thread. */
export function pageExtractor(workers: number): PageExtractor {
  if (workers < 1 || typeof Worker === "undefined") return new InlineExtractor();
  return new WorkerExtractor(workers);
}
