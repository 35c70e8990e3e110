/**
 * Worker side of {@link WorkerExtractor}: a PDF's structure, page ranges to lines, and stored
 * pages prepared for a course (`prepareText`), off the main thread. A worker keeps the last PDF it opened, by key, for the next range of that file.
 */
import { backgroundNice, serveWorker } from "@troupe/runtime/workers";
import { OpenPdfs, readPages, readStructure } from "./extract.ts";
import type { OutlineEntry, PdfLimits } from "./pdf.ts";
import { prepareText } from "./page_clean.ts";

let open: OpenPdfs | null = null;
/** The open documents, kept while the limits they were checked against stay the same. */
const opened = (limits: PdfLimits = {}) => {
  if (!open || JSON.stringify(open.limits) !== JSON.stringify(limits)) {
    open?.close();
    open = new OpenPdfs(1, undefined, limits);
  }
  return open;
};

serveWorker(
  {
    structure: (bytes: Uint8Array, key?: string, limits?: PdfLimits) =>
      readStructure(opened(limits), bytes, key),
    pages: (bytes: Uint8Array, from: number, to: number, key?: string, limits?: PdfLimits) =>
      readPages(opened(limits), bytes, from, to, key),
    prepare: (pages: string, outline: OutlineEntry[]) => prepareText(pages, outline),
    // Background work, at `WORKER_NICE` (see backgroundNice).
  },
  undefined,
  { nice: backgroundNice() },
);
