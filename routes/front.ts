/**
 * What an instance serves while its full app loads: the public health check alone, with the
 * headers every answer carries (request id, CORS, the alias's deprecation), so a start answers
 * its first health check before the workloads, routes and schemas have loaded. Every other
 * request waits for the full app, and once the full app is there every request (health too)
 * goes to it.
 *
 * Invariants:
 * - only `GET`/`HEAD` of `/api/health` and `/api/v1/health` are answered before the full app,
 *   and not before `ready` has resolved;
 * - the full app is loaded once (`load` is called at most once), on the first request that
 *   needs it or when `start()` is called, whichever comes first;
 * - a failed load fails every request waiting for it and every later one (what the process then
 *   does is its caller's choice: deploy/start.ts ends it).
 */
import { Hono } from "hono";
import { API_V1, deprecatedAlias } from "./aliases.ts";
import { corsFor } from "./cors.ts";
import type { AppEnv } from "./env.ts";
import { healthCheck, type HealthOptions, type HealthSubject } from "./health_check.ts";
import type { Cache } from "../db/cache/cache.ts";
import { requestId } from "./request_id.ts";
import type { FetchHandler } from "./serve.ts";

export interface FrontOptions {
  /** What the health check asks before the full app is there. */
  subject: HealthSubject;
  cache?: Cache;
  health?: HealthOptions;
  /**
   * What the health check waits for before it asks anything (the database's migrations
   * checked); a rejection is the caller's to handle (deploy/start.ts ends the process).
   * @default nothing
   */
  ready?: Promise<unknown>;
  /** Browser origins allowed (as the full app's `corsOrigins`). @default none */
  corsOrigins?: readonly string[];
  /** Builds the full app (imports, composition); called once. */
  load: () => Promise<FetchHandler>;
}

/** A front's handler, and how to start loading the full app before a request needs it. */
export interface Front {
  fetch: FetchHandler;
  /** Starts loading the full app (once); resolves with its handler. */
  start(): Promise<FetchHandler>;
  /** The full app's handler once loaded, else null. */
  readonly full: FetchHandler | null;
  /** Resolves once a first answer has been given (and its macrotask is over). */
  readonly answered: Promise<void>;
}

const HEALTH = new Set(["/api/health", `${API_V1}/health`]);

/** The front over `load` (see the module doc). */
export function frontApp(options: FrontOptions): Front {
  const quick = new Hono<AppEnv>();
  quick.use("*", requestId());
  quick.use("/api/*", corsFor(options.corsOrigins ?? []));
  quick.use("/api/*", deprecatedAlias);
  // The same check as the full app's route (routes/health.ts), without its OpenAPI modules.
  const check = healthCheck(options.subject, options.cache, options.health);
  for (const path of HEALTH) quick.get(path, (c) => check(c, false));
  let loading: Promise<FetchHandler> | null = null;
  const { promise: answered, resolve: answer } = Promise.withResolvers<void>();
  let full: FetchHandler | null = null;
  const start = () =>
    loading ??= options.load().then((handler) => {
      full = handler;
      return handler;
    });
  return {
    get full() {
      return full;
    },
    start,
    answered,
    async fetch(req, info) {
      if (full) return await full(req, info);
      if (
        (req.method === "GET" || req.method === "HEAD") && HEALTH.has(new URL(req.url).pathname)
      ) {
        await options.ready;
        const res = await quick.fetch(req, info);
        setTimeout(answer, 0);
        return res;
      }
      return await (await start())(req, info);
    },
  };
}
