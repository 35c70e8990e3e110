/**
 * `system.echo`: returns its input after an optional pause, reporting progress. The smallest
 * useful actor: a smoke test for a fresh start and the no-op of the benchmarks.
 *
 * Echoes with the same `key` run one at a time, within a tenant only: the key holds the
 * caller's tenant (set by the jobs API, see `tenantScoped` in routes/jobs.ts), so one tenant's
 * long echo never holds another's.
 */
import { z } from "zod";
import { defineActor } from "@troupe/runtime";

export const echoActor = defineActor({
  name: "system.echo",
  input: z.object({
    message: z.string().max(10_000).optional(),
    /** Pause, in ms, split into 10 progress steps. */
    ms: z.number().int().min(0).max(600_000).optional(),
    key: z.string().max(200).optional(),
    /** The caller's tenant, written by the jobs API over anything the caller sent. */
    tenantId: z.string().max(100).nullable().optional(),
  }),
  key: (input) => `echo:${input.tenantId ?? "-"}:${input.key ?? "default"}`,
  handler: async (input, ctx) => {
    const ms = input.ms ?? 0;
    if (ms > 0) {
      for (let step = 1; step <= 10; step++) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, ms / 10);
          ctx.signal.addEventListener("abort", () => {
            clearTimeout(t);
            reject(ctx.signal.reason);
          }, { once: true });
        });
        ctx.progress(step * 10, `step ${step} of 10`);
      }
    }
    return { message: input.message ?? null, at: new Date().toISOString() };
  },
});
