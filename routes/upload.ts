/**
 * Receiving an upload's body ({@link receiveUpload}): held in the runtime's foreground, and
 * failed with `UploadStalledError` (408) when a read waits `idleMs` for the client's next bytes
 * ({@link stallGuard}). An upload holds the runtime's foreground (background work paused, then
 * one job at a time) and a temporary file or parts until it ends; a client that stops sending
 * mid-body would hold them for as long as its connection stays open. Only time spent waiting
 * on the client counts (a slow disk behind the reader does not): the timer runs while a read is
 * pending, and none is left behind by a body nobody reads any more.
 */
import { UploadStalledError } from "../actors/runtime/errors.ts";
import type { Runtime } from "../actors/runtime/runtime.ts";

/** How long an upload may wait for its client's next bytes. */
export const UPLOAD_IDLE_MS = 30_000;

/**
 * `read` given the request body under {@link stallGuard}, while the runtime holds background
 * work back ({@link Runtime.foreground}) until it ends, however it ends.
 */
export async function receiveUpload<T>(
  runtime: Runtime,
  body: ReadableStream<Uint8Array>,
  read: (body: ReadableStream<Uint8Array>) => Promise<T>,
  idleMs = UPLOAD_IDLE_MS,
): Promise<T> {
  const leave = runtime.foreground();
  try {
    return await read(stallGuard(body, idleMs));
  } finally {
    leave();
  }
}

/** `body`, failing with `UploadStalledError` when a read waits `idleMs` for the client. */
export function stallGuard(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let stalled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const timer = setTimeout(() => {
        stalled = true;
        const err = new UploadStalledError(idleMs);
        controller.error(err);
        reader.cancel(err).catch(() => {});
      }, idleMs);
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        if (!stalled) controller.error(err);
        return;
      } finally {
        clearTimeout(timer);
      }
      if (stalled) return;
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
