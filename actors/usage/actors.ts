/**
 * Report syncs: sources, the sync pipeline and the schedule tick (see README.md here).
 */
import type { AnyActor } from "@troupe/runtime";
import { tickActor } from "./schedule.ts";
import { syncActors, type UsageDeps } from "./sync.ts";

export { SourceStore } from "./sources.ts";
export { listSyncs, startSync, type UsageDeps } from "./sync.ts";
export { tick } from "./schedule.ts";

/** Every actor of the usage workload. */
export function usageActors(deps: UsageDeps): AnyActor[] {
  return [...syncActors(deps), tickActor(deps)];
}
