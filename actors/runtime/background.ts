/**
 * The runtime's background tasks (lease heartbeat, reaper, outbox relay, vacuum).
 *
 * Invariants:
 * - A task never overlaps itself: a tick that finds the previous run busy is skipped.
 * - A task that fails never stops the process: it is logged, counted in `failures` and runs
 *   again on its next tick.
 * - Once `stopping` is set no new run starts; `clear()` stops the timers.
 */
import type { Logger } from "./ports.ts";

/** Periodic tasks with failures counted (see the invariants above). */
export class BackgroundTasks {
  readonly #log: Logger;
  #timers: ReturnType<typeof setInterval>[] = [];
  #failures = 0;
  /** Set while the runtime stops: no new run starts. */
  stopping = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Background tasks that failed since the start. */
  get failures(): number {
    return this.#failures;
  }

  /** Runs `fn` every `ms`, one run at a time. */
  every(task: string, ms: number, fn: () => Promise<unknown>): void {
    let busy = false;
    this.#timers.push(setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      this.run(task, fn).finally(() => busy = false);
    }, ms));
  }

  /** Runs a background task once; a failure is logged and counted, never thrown. */
  async run(task: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#failures++;
      this.#log.error("background task failed; it runs again on its next tick", {
        task,
        error: String(err),
        failures: this.#failures,
      });
    }
  }

  /** Stops every timer. */
  clear(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }
}
