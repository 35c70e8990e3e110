/**
 * The edge entry (Deno Deploy's entrypoint): `main.ts`'s server, except that migrations are
 * only checked at start, and that the start answers the public health check before the rest
 * has loaded. An instance starts on a request, so it must not hold the first one behind DDL,
 * nor race other instances for the migration lock: `deno task migrate` applies them at deploy
 * time, and a start finding any missing exits at once, naming them. It listens as soon as the
 * database is open (answering nothing before the check has passed), and loads `main.ts`
 * (workloads, runtime, the app; route groups load on use) behind the health check (deploy/start.ts, routes/front.ts): that is why it imports deploy/start.ts, not
 * main.ts. The `troupe maintenance` cron runs the maintenance pass every minute (reap, outbox
 * relay, due schedules), so that no job waits on a timer of an instance Deploy stopped.
 * Request heads are not timed here unless `HTTP_HEADER_TIMEOUT_MS` says so: Deploy's proxy
 * times them out, and without the timeout the server is `Deno.serve` alone, without the
 * `node:http` front (routes/serve.ts), whose module would hold the first answer.
 * A delivery of a stepped job (`course.build`, `dataset.split`, `dataset.merge`) takes work
 * for half of a 30 s budget (`DELIVERY_BUDGET_MS` overrides it), then hands the rest to its
 * next message.
 *
 *   deno run -A deploy/edge.ts
 */
import { run } from "./start.ts";

/** The delivery budget of stepped jobs on the edge, unless `DELIVERY_BUDGET_MS` sets one. */
export const EDGE_BUDGET_MS = 30_000;

if (import.meta.main) {
  await run([], {
    migrations: "check",
    maintenanceCron: true,
    healthFirst: true,
    deliveryBudgetMs: EDGE_BUDGET_MS,
    envDefaults: { HTTP_HEADER_TIMEOUT_MS: "0" },
  });
}
