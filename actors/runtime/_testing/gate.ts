/**
 * Holds a handler at its last instant (it has run, its commit has not started) so that a fault
 * can act on the world meanwhile: lapse its lease, let another worker run the message, then
 * let the held handler go on or "crash".
 */
import type { ActorContext, AnyActor } from "../define.ts";

/** Thrown into a held handler that the fault kit crashes: its process is gone. */
export class WorkerCrashed extends Error {
  override readonly name = "WorkerCrashed";
  constructor(worker: string) {
    super(`worker ${worker} crashed (fault injected)`);
  }
}

interface Armed {
  reached: PromiseWithResolvers<void>;
  release: PromiseWithResolvers<"continue" | "crash">;
}

/** Arms holds by (job, worker) and wraps actors so that their handlers honour them. */
export class Gate {
  readonly #armed = new Map<string, Armed>();

  /** Holds `worker`'s next run of `jobId` after its handler returns. */
  arm(jobId: string, worker: string): {
    reached: Promise<void>;
    release(how: "continue" | "crash"): void;
    /** Disarms a hold not reached. */
    cancel(): void;
  } {
    const armed: Armed = { reached: Promise.withResolvers(), release: Promise.withResolvers() };
    const slot = `${worker}\u0000${jobId}`;
    this.#armed.set(slot, armed);
    return {
      reached: armed.reached.promise,
      release: (how) => armed.release.resolve(how),
      cancel: () => {
        if (this.#armed.get(slot) === armed) this.#armed.delete(slot);
      },
    };
  }

  /** The actors as `worker` runs them: each handler passes the gate when it returns. */
  wrap(actors: readonly AnyActor[], worker: string): AnyActor[] {
    const armed = this.#armed;
    return actors.map((def) => ({
      ...def,
      handler: async function gated(input: unknown, ctx: ActorContext<unknown>) {
        const result = await def.handler(input, ctx);
        const slot = `${worker}\u0000${ctx.jobId}`;
        const hold = armed.get(slot);
        if (hold) {
          armed.delete(slot);
          hold.reached.resolve();
          if (await hold.release.promise === "crash") throw new WorkerCrashed(worker);
        }
        return result;
      },
    }));
  }
}
