/**
 * Report syncs: sources, the sync pipeline and the schedule tick (see README.md here).
 */
import type { AnyActor, SqlDatabase } from "@troupe/runtime";
import { MemoryRateLimiter } from "../../db/ratelimit/memory.ts";
import { generateKeyText, parseKeys, SecretBox } from "../../db/secrets.ts";
import { EgressPolicy } from "../net/egress.ts";
import { SourceStore } from "./sources.ts";
import { tickActor } from "./schedule.ts";
import { syncActors, type UsageDeps } from "./sync.ts";

export { SourceStore } from "./sources.ts";
export { listSyncs, startSync, type UsageDeps } from "./sync.ts";
export { tick } from "./schedule.ts";

/** Every actor of the usage workload. */
export function usageActors(deps: UsageDeps): AnyActor[] {
  return [...syncActors(deps), tickActor(deps)];
}

/**
 * The usage actors for reading their definitions only (names, schedules: what
 * `schedules:sync` reconciles); running one throws.
 */
export function usageDefinitions(): AnyActor[] {
  const refuse = () => {
    throw new Error("these usage actors are definitions only");
  };
  return usageActors({ runtime: refuse } as unknown as UsageDeps);
}

/** Dependencies enough to mount the routes and read their documentation (no runtime). */
export function documentOnlyUsage(db: SqlDatabase): UsageDeps {
  return {
    db,
    sources: new SourceStore(
      db,
      new SecretBox(parseKeys(generateKeyText("doc"))),
      new EgressPolicy(),
    ),
    limiter: new MemoryRateLimiter(),
    runtime: () => {
      throw new Error("no runtime: routes mounted for their documentation only");
    },
  };
}
