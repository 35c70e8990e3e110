/**
 * A handler's progress reports, written to its job row at most every `PROGRESS_EVERY_MS`: the
 * last report in each window wins, watchers in this process hear of every one at once, and
 * nothing is written once the handler has ended (`close`).
 */
import type { Logger, SqlExecutor } from "./ports.ts";
import { type ClaimOf, writeProgress } from "./sql/job_progress.ts";
import type { Tables } from "./sql/tables.ts";

const PROGRESS_EVERY_MS = 200;

/** Reports progress of one attempt (job `id` under lease `fence`, its `attempt`). */
export interface ProgressWriter {
  /** Records `percent` (clamped to 0-100) and `message`. */
  report(percent: number, message: string | null): void;
  /** Drops a pending write: the attempt has ended. */
  close(): void;
}

/** A progress writer for one attempt of a job. */
export function progressWriter(
  db: SqlExecutor,
  t: Tables,
  job: ClaimOf,
  log: Logger,
  onProgress?: (jobId: string, percent: number, message: string | null) => void,
): ProgressWriter {
  let last = 0;
  let pending: { percent: number; message: string | null } | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const write = () => {
    timer = undefined;
    if (!pending || closed) return;
    const { percent, message } = pending;
    pending = null;
    last = Date.now();
    writeProgress(db, t, job, percent, message)
      .catch((err) => log.warn("progress write failed", { error: String(err) }));
  };
  return {
    report: (percent: number, message: string | null) => {
      const pct = Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
      pending = { percent: pct, message: message === null ? null : String(message) };
      onProgress?.(job.id, pct, pending.message);
      if (timer !== undefined) return;
      timer = setTimeout(write, Math.max(0, last + PROGRESS_EVERY_MS - Date.now()));
    },
    close: () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
