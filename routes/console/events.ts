/**
 * The console's live job events: one stream per page, fed by `runtime.subscribeAll` (the changes
 * of every instance on the database, pushed by NOTIFY).
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { isTerminal, type Runtime } from "@troupe/runtime";

const KEEPALIVE_MS = 15_000;
/**
 * A change is announced before the runtime writes it (progress writes are throttled to one per
 * 200 ms): each changed job is read again this long after, and sent if it changed since.
 */
const REREAD_MS = 400;

/**
 * Server-sent events of the jobs this principal sees, as they change in any instance
 * (`runtime.subscribeAll`): one `job` event per change, data the job's status, progress and
 * attempts. A notification may be lost; the page's script polls as well.
 */
export function jobEvents(c: Context, runtime: Runtime, scope: string | undefined): Response {
  return streamSSE(c, async (stream) => {
    const pending = new Set<string>();
    const rereads = new Map<string, ReturnType<typeof setTimeout>>();
    const sent = new Map<string, string>();
    let wake: (() => void) | null = null;
    let closed = false;
    stream.onAbort(() => {
      closed = true;
      wake?.();
    });
    const unsubscribe = await runtime.subscribeAll((id) => {
      if (pending.size >= 1000) return;
      pending.add(id);
      if (!rereads.has(id)) {
        rereads.set(
          id,
          setTimeout(() => {
            rereads.delete(id);
            pending.add(id);
            wake?.();
          }, REREAD_MS),
        );
      }
      wake?.();
    });
    try {
      await stream.write(": open\n\n");
      while (!closed) {
        for (const id of [...pending]) {
          pending.delete(id);
          const job = await runtime.getJob(id, scope).catch(() => null);
          if (!job) continue;
          const data = JSON.stringify({
            id: job.id,
            status: job.status,
            progress: job.progress,
            progressMessage: job.progressMessage,
            attempts: job.attempts,
            maxAttempts: job.maxAttempts,
            terminal: isTerminal(job.status),
            outcome: job.error ?? job.result ?? null,
          });
          if (sent.get(id) === data) continue;
          sent.delete(id);
          sent.set(id, data);
          if (sent.size > 1000) sent.delete(sent.keys().next().value!);
          await stream.writeSSE({ event: "job", data });
        }
        if (closed) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, KEEPALIVE_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
          if (pending.size > 0) wake();
        });
        wake = null;
        if (pending.size === 0 && !closed) await stream.write(": keepalive\n\n");
      }
    } finally {
      unsubscribe();
      for (const timer of rereads.values()) clearTimeout(timer);
    }
  });
}
