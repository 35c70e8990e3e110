/**
 * Worker side of {@link WorkerExtractor}: a PDF's structure, and page ranges to lines, off the
 * main thread. A worker keeps the last PDF it opened, by key, for the next range of that file.
 */
import { serveWorker } from "../runtime/worker_pool.ts";
import { OpenPdfs, readPages, readStructure } from "./extract.ts";

const open = new OpenPdfs(1);

serveWorker({
  structure: (bytes: Uint8Array, key?: string) => readStructure(open, bytes, key),
  pages: (bytes: Uint8Array, from: number, to: number, key?: string) =>
    readPages(open, bytes, from, to, key),
});
