/**
 * Worker side of {@link WorkerExtractor}: PDF page ranges to lines, off the main thread.
 *
 * The extract messages of one file arrive one range after another, so the worker keeps the
 * last opened document (by its key, the file's SHA-256) for a few seconds: opening a PDF
 * again for each range of 20 pages nearly doubled the time per page.
 */
import { serveWorker } from "../runtime/worker_pool.ts";
import { PdfDocument } from "./pdf.ts";

const KEEP_MS = 5_000;
let open: { key: string; doc: PdfDocument; timer?: ReturnType<typeof setTimeout> } | null = null;

async function drop(): Promise<void> {
  if (!open) return;
  const { doc, timer } = open;
  open = null;
  clearTimeout(timer);
  await doc.close();
}

serveWorker({
  async pages(bytes: Uint8Array, from: number, to: number, key?: string) {
    if (!key) {
      const pdf = await PdfDocument.open(bytes);
      try {
        return await pdf.pages(from, to);
      } finally {
        await pdf.close();
      }
    }
    if (open?.key !== key) {
      await drop();
      open = { key, doc: await PdfDocument.open(bytes) };
    }
    const current = open;
    clearTimeout(current.timer);
    try {
      return await current.doc.pages(from, to);
    } catch (err) {
      await drop();
      throw err;
    } finally {
      if (open === current) current.timer = setTimeout(() => void drop(), KEEP_MS);
    }
  },
});
