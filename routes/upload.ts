/**
 * Receiving an upload's body ({@link receiveUpload}): held in the runtime's foreground, and
 * watched by {@link guardUpload}, which fails it with a 408 when its client is too slow:
 * - `UPLOAD_STALLED` when a read waits `idleMs` for the client's next bytes;
 * - `UPLOAD_TOO_SLOW` when fewer than `minBytesPerSecond` arrived over the last `rateWindowMs`,
 *   or when the upload is still arriving at its deadline: `deadlineBaseMs` plus its size
 *   (declared, else the largest accepted) at `minBytesPerSecond`.
 *
 * An upload holds the runtime's foreground (background work paused, then one job at a time) and
 * a temporary file or parts until it ends; a client that stops, or sends a byte now and then,
 * would hold them for as long as its connection stays open. Only time spent waiting on the
 * client counts (a slow disk behind the reader does not): the clocks run while a read is
 * pending, and no timer is left behind by a body nobody reads any more (its one timer stops at
 * the first tick that finds no read pending).
 */
import {
  PayloadTooLargeError,
  type Runtime,
  UploadStalledError,
  UploadTooSlowError,
} from "@troupe/runtime";
import type { MultipartLimits } from "./multipart.ts";

/** How slow an upload's client may be. */
export interface UploadPolicy {
  /** Longest wait for the client's next bytes. @default 30 s */
  idleMs?: number;
  /** Slowest accepted rate, averaged over `rateWindowMs`; 0 turns the rate and deadline off. @default 8 KiB/s */
  minBytesPerSecond?: number;
  /** The window the rate is averaged over (also the grace before it is first judged). @default 30 s */
  rateWindowMs?: number;
  /** The deadline's fixed part, before the size's share at the minimum rate. @default 60 s */
  deadlineBaseMs?: number;
}

/** What an upload route is given: its client's pace and its form's limits. */
export interface UploadLimits extends UploadPolicy, MultipartLimits {}

export const UPLOAD_DEFAULTS: Required<UploadPolicy> = {
  idleMs: 30_000,
  minBytesPerSecond: 8 * 1024,
  rateWindowMs: 30_000,
  deadlineBaseMs: 60_000,
};

/**
 * `read` given the request body under {@link guardUpload}, while the runtime holds background
 * work back ({@link Runtime.foreground}) until it ends, however it ends. `sizeBytes` is the
 * body's declared size, or the largest the route accepts.
 */
export async function receiveUpload<T>(
  runtime: Runtime,
  body: ReadableStream<Uint8Array>,
  read: (body: ReadableStream<Uint8Array>) => Promise<T>,
  { policy = {}, sizeBytes = Infinity }: { policy?: UploadPolicy; sizeBytes?: number } = {},
): Promise<T> {
  const leave = runtime.foreground();
  try {
    return await read(guardUpload(body, policy, sizeBytes));
  } finally {
    leave();
  }
}

/** The size an upload's deadline is scaled to: its `Content-Length`, or else `max`. */
export function declaredSize(contentLength: string | undefined, max: number): number {
  const n = Number(contentLength);
  return contentLength !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : max;
}

/**
 * `body`, failing with `UploadStalledError` or `UploadTooSlowError` (both 408) when its client
 * is too slow for `policy`, or with `PayloadTooLargeError` past `sizeBytes` (parts a route skips
 * are read and dropped, and a chunked body declares no size); the client's body is then
 * cancelled.
 */
export function guardUpload(
  body: ReadableStream<Uint8Array>,
  policy: UploadPolicy = {},
  sizeBytes = Infinity,
): ReadableStream<Uint8Array> {
  const { idleMs, minBytesPerSecond: minRate, rateWindowMs: windowMs, deadlineBaseMs } = {
    ...UPLOAD_DEFAULTS,
    ...policy,
  };
  const deadlineMs = minRate > 0 ? deadlineBaseMs + (sizeBytes / minRate) * 1000 : Infinity;
  const tick = Math.max(10, Math.min(1000, idleMs, minRate > 0 ? windowMs / 8 : Infinity));
  const reader = body.getReader();
  /** Time spent waiting on the client in reads that ended. */
  let waited = 0;
  let received = 0;
  // (client time, bytes received by then), at least a 32nd of the window apart: the rate over
  // the window is judged from the newest sample at or before its start, so it errs lenient by
  // at most a 32nd of a window's bytes, and the list stays short however small the chunks.
  const samples: [number, number][] = [[0, 0]];
  const spacing = windowMs / 32;
  let failed = false;

  const verdict = (pendingMs: number): Error | null => {
    if (pendingMs >= idleMs) return new UploadStalledError(idleMs);
    const now = waited + pendingMs;
    if (now >= deadlineMs) {
      return new UploadTooSlowError(
        `the request body was still arriving after ${Math.round(deadlineMs)} ms`,
        { reason: "deadline", deadlineMs: Math.round(deadlineMs), receivedBytes: received },
      );
    }
    if (minRate > 0 && now >= windowMs) {
      const from = now - windowMs;
      while (samples.length > 1 && samples[1]![0] <= from) samples.shift();
      const bytes = received - samples[0]![1];
      if (bytes * 1000 < minRate * windowMs) {
        return new UploadTooSlowError(
          `the request body arrived at ${
            Math.round(bytes * 1000 / windowMs)
          } bytes/s, under the minimum of ${minRate}`,
          { reason: "rate", minBytesPerSecond: minRate, windowMs, receivedBytes: received },
        );
      }
    }
    return null;
  };

  // One timer while reads are pending, not one a read: it is made by the first read that finds
  // none, and stops at a tick that finds no read pending, or when the body ends.
  let timer: ReturnType<typeof setInterval> | null = null;
  /** When the pending read began, and how it fails; null: no read pending. */
  let pending: { since: number; fail: (err: Error) => void } | null = null;
  const stopTimer = () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };
  const onTick = () => {
    if (!pending) return stopTimer();
    const err = verdict(performance.now() - pending.since);
    if (err) {
      stopTimer();
      pending.fail(err);
    }
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const fail = (err: Error) => {
        failed = true;
        stopTimer();
        controller.error(err);
        reader.cancel(err).catch(() => {});
      };
      const start = performance.now();
      pending = { since: start, fail };
      timer ??= setInterval(onTick, tick);
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        stopTimer();
        if (!failed) controller.error(err);
        return;
      } finally {
        pending = null;
        waited += performance.now() - start;
      }
      if (failed) return;
      if (r.done) {
        stopTimer();
        return controller.close();
      }
      received += r.value.byteLength;
      if (received > sizeBytes) {
        return fail(new PayloadTooLargeError(sizeBytes, "the request body"));
      }
      if (waited - samples.at(-1)![0] >= spacing) samples.push([waited, received]);
      // Judged on arrival too: a client whose bytes come more often than the timer's tick is
      // never seen by it.
      const err = verdict(0);
      if (err) return fail(err);
      controller.enqueue(r.value);
    },
    cancel(reason) {
      stopTimer();
      return reader.cancel(reason);
    },
  });
}
