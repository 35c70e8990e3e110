/**
 * The process entry of `main.ts` and `deploy/edge.ts`: reads the environment, composes, serves
 * HTTP, registers cron schedules (table queue only; with QStash, QStash schedules call
 * `/schedules/:name`), and stops gracefully on SIGINT/SIGTERM.
 *
 * With `healthFirst` (the edge entry), the start loads the database's driver, the front
 * (routes/front.ts) and the cache's client at once, and listens as soon as they are there,
 * while the migrations are checked; it answers the public health check from these light
 * modules, once the check has passed, while `main.ts` (the workloads, routes and schemas)
 * loads and composes behind it; other requests wait for it. An instance started by a request
 * answers that request as soon as it can, and a health check sooner. This module's own
 * imports hold no npm package, and it imports `main.ts` only dynamically, for that reason
 * (`deno task deploy:check` guards the edge entry's first modules).
 *
 * Invariants:
 * - nothing is answered before the migrations are checked (or applied), and only the edge
 *   entry listens before: a start missing some exits with code 1, naming them;
 * - a composition that fails after the listener is up ends the process (code 1), and so does
 *   the runtime's start, which the edge entry lets finish behind its first answers (with QStash
 *   nothing is claimed; deliveries wait for it: `startBehind` in main.ts);
 * - a stop waits for a composition under way, then closes it: the process is gone within 5 s.
 */
import { join } from "node:path";
import type { AnyActor, SqlDatabase } from "@troupe/runtime";
import { jsonLogger } from "@troupe/runtime/ports";
import type { compose, Composed, ComposeOptions } from "../main.ts";
import { MigrationsPendingError, prepareMigrations } from "../db/migrate.ts";
import { Cache } from "../db/cache/cache.ts";
import { MemoryCacheStore } from "../db/cache/memory.ts";
import { type FetchHandler, loadNodeHttp, serve, type Server } from "../routes/serve.ts";
import {
  type Config,
  ConfigError,
  drivers,
  loadBackgroundTimers,
  loadConfig,
  loadRole,
  loadS3Config,
  type Role,
  type S3Config,
} from "./config.ts";
import { healthProbes, openDatabase, openRedis, portAvailable, startFailed } from "./open.ts";
import { localUrl, writeServerFile } from "./server_file.ts";

/**
 * With `healthFirst`, how long a start that no health check reaches waits, once listening, before
 * loading the full app.
 */
const LOAD_AFTER_MS = 100;

/** How {@link run} starts. */
export interface RunOptions extends Pick<ComposeOptions, "migrations" | "deliveryBudgetMs"> {
  /** Registers the `troupe maintenance` cron (every minute: reap, relay, due schedules). */
  maintenanceCron?: boolean;
  /** Listens before composing, answering the health check first (see the module doc). */
  healthFirst?: boolean;
  /** Values of variables the environment leaves unset or blank (the entry's own defaults). */
  envDefaults?: Readonly<Record<string, string>>;
  /** `main.ts`'s `compose`, when the caller has it loaded. @default imported when needed */
  compose?: typeof compose;
}

/** The process entry (see the module doc). `extraActors` is for tests and embedders. */
export async function run(extraActors: AnyActor[] = [], options: RunOptions = {}): Promise<void> {
  let config: Config;
  let s3: S3Config | null;
  let role: Role;
  try {
    const env = Deno.env.toObject();
    for (const [name, value] of Object.entries(options.envDefaults ?? {})) {
      if (!env[name]?.trim()) env[name] = value;
    }
    config = loadConfig(env);
    s3 = loadS3Config(env);
    role = loadRole(env);
    loadBackgroundTimers(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    Deno.exit(1);
  }
  const portFree = portAvailable(config.HOST, config.PORT);
  if (portFree !== true) startFailed(portFree);
  const { maintenanceCron, healthFirst, envDefaults: _, compose: given, ...composeOptions } =
    options;
  const log = jsonLogger(config.LOG_LEVEL);
  const composeFrom = async (db?: SqlDatabase): Promise<Composed> => {
    const compose = given ?? (await import("../main.ts")).compose;
    try {
      const troupe = await compose(config, extraActors, {
        ...composeOptions,
        role,
        s3,
        ...(db ? { db } : {}),
        // The edge answers its first requests while the runtime's start finishes (QStash).
        ...(healthFirst ? { startBehind: true } : {}),
      });
      troupe.started.catch((err) => {
        console.error("troupe: the runtime's start failed:", err);
        Deno.exit(1);
      });
      return troupe;
    } catch (err) {
      if (err instanceof MigrationsPendingError) startFailed(err.message);
      if (err instanceof Error && err.name === "DirectoryLockedError") startFailed(err.message);
      throw err;
    }
  };

  let troupe: Composed | null = null;
  const { promise: listening, resolve: listened } = Promise.withResolvers<void>();
  let composing: Promise<Composed>;
  let handler: FetchHandler;
  // Before the server starts, as Deno Deploy requires; `Deno.cron`'s first use loads its
  // runtime modules, so the edge start makes it while its own modules load and connect.
  const { promise: composition, resolve: composed } = Promise.withResolvers<Composed>();
  const registerCron = () => {
    if (!maintenanceCron) return;
    // Deno Deploy runs its crons even with no instance up: the pass needs no timer of ours.
    Deno.cron("troupe maintenance", "* * * * *", async () => {
      const t = await composition;
      t.runtime.log.info("maintenance pass", await t.runtime.maintenancePass());
    });
  };
  if (healthFirst) {
    // What the first health answer needs loads at once: the database's driver (it connects and
    // the migrations are checked meanwhile), the front's modules, the cache's client.
    const opened = openOrFail(config);
    const checked = opened.then((db) => prepare(db, options.migrations ?? "apply", log));
    checked.catch((err) => {
      console.error("troupe: the start failed:", err);
      Deno.exit(1);
    });
    const frontModule = import("../routes/front.ts");
    const frontCache = openCache(config);
    registerCron();
    if (config.HTTP_HEADER_TIMEOUT_MS > 0) await loadNodeHttp();
    const [{ frontApp }, db, cache] = await Promise.all([frontModule, opened, frontCache]);
    // The front listens while the migrations are checked; it answers nothing before they are.
    const front = frontApp({
      subject: {
        db,
        transport: { name: drivers(config).transport },
        health: () => Promise.reject(new Error("the queue figures are the full app's")),
      },
      cache,
      health: { probes: healthProbes(config, db), probeAtOnce: true },
      corsOrigins: config.CORS_ORIGINS,
      ready: checked,
      load: async () => {
        // The app's modules load while the migrations are checked; it composes after.
        const app = given ? null : import("../main.ts");
        app?.catch(() => {});
        await checked;
        await app;
        return (troupe = await composeFrom(db)).fetch;
      },
    });
    handler = front.fetch;
    // The first health check is answered before the full app starts loading (its modules'
    // evaluation would hold that answer); a start no request reaches loads it soon anyway.
    composing = Promise.race([
      front.answered,
      Promise.all([listening, checked]).then(() =>
        new Promise((resolve) => setTimeout(resolve, LOAD_AFTER_MS))
      ),
    ]).then(() => front.start()).then(() => troupe!);
    composing.catch((err) => {
      console.error("troupe: the start failed:", err);
      Deno.exit(1);
    });
  } else {
    registerCron();
    troupe = await composeFrom();
    composing = Promise.resolve(troupe);
    handler = troupe.fetch;
  }
  composing.then(composed, () => {});
  const server = await serve({
    port: config.PORT,
    hostname: config.HOST,
    headerTimeoutMs: config.HTTP_HEADER_TIMEOUT_MS,
    keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    onListen: ({ hostname, port }) =>
      log.info("troupe listening", {
        url: `http://${hostname}:${port}`,
        database: drivers(config).database,
        transport: drivers(config).transport,
        role,
      }),
  }, handler);
  listened();
  const started = composing.then((t) => afterCompose(t, config, role, server));
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down");
    // Whatever hangs, the process is gone within 5 s (hosts kill it soon after the signal).
    const deadline = setTimeout(() => Deno.exit(0), 4_500);
    Deno.unrefTimer(deadline);
    // Open keep-alive connections may hold the server's shutdown: the runtime's stop (handlers'
    // grace, lease release, outbox relay) gets the rest of the budget regardless.
    await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 1_000))]);
    const { stop } = await started;
    await stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}

/** The cache over the configured store (Upstash Redis, else memory), its modules loaded here. */
async function openCache(config: Config): Promise<Cache> {
  const redis = await openRedis(config);
  if (!redis) return new Cache(new MemoryCacheStore());
  const { UpstashCacheStore } = await import("../db/cache/upstash.ts");
  return new Cache(new UpstashCacheStore(redis));
}

/** The database the configuration names; a locked embedded directory ends the start. */
async function openOrFail(config: Config): Promise<SqlDatabase> {
  try {
    return await openDatabase(config);
  } catch (err) {
    if (err instanceof Error && err.name === "DirectoryLockedError") startFailed(err.message);
    throw err;
  }
}

/**
 * `db`'s migrations applied or checked; missing ones end the start (naming them), and any
 * failure closes `db`.
 */
async function prepare(
  db: SqlDatabase,
  migrations: "apply" | "check",
  log: ReturnType<typeof jsonLogger>,
): Promise<void> {
  try {
    await prepareMigrations(db, migrations, log);
  } catch (err) {
    await db.close();
    if (err instanceof MigrationsPendingError) startFailed(err.message);
    throw err;
  }
}

/**
 * What follows a composition: cron schedules (table queue), the metrics listener, the embedded
 * server file, the new dev key's message. Returns what stops it all.
 */
async function afterCompose(
  troupe: Composed,
  config: Config,
  role: Role,
  server: Server,
): Promise<{ stop(): Promise<void> }> {
  const log = troupe.runtime.log;
  log.info("troupe composed", {
    database: troupe.db.dialect,
    transport: troupe.runtime.transport.name,
    actors: [...troupe.runtime.actors.keys()],
  });
  // With QStash, QStash schedules call `/schedules/:name` instead.
  if (drivers(config).transport !== "qstash" && role !== "api") {
    troupe.runtime.registerSchedules((name, schedule, fn) => Deno.cron(name, schedule, fn));
  }
  // The embedded directory has one user: `deno task run` finds this server here and calls it.
  const forgetServer = troupe.db.dialect === "pglite"
    ? await writeServerFile(config.DATA_DIR, localUrl(server.addr.hostname, server.addr.port))
    : async () => {};
  const metrics = troupe.metrics;
  const metricsServer = metrics && config.METRICS_PORT !== undefined
    ? Deno.serve(
      {
        port: config.METRICS_PORT,
        hostname: config.HOST,
        onListen: ({ hostname, port }) =>
          log.info("metrics listening", { url: `http://${hostname}:${port}/metrics` }),
      },
      (await import("../routes/metrics.ts")).metricsRoutes({
        sink: metrics,
        route: { token: config.METRICS_TOKEN },
      }).fetch,
    )
    : null;
  if (troupe.newDevKey) {
    console.log(
      `\nDev tenant API key (shown once, also saved in ${
        join(config.DATA_DIR, "dev-api-key")
      }):\n  ${troupe.newDevKey}\nTry: curl -H "X-API-Key: ${troupe.newDevKey}" http://${config.HOST}:${config.PORT}/api/jobs\n`,
    );
  }
  return {
    async stop() {
      await metricsServer?.shutdown();
      await forgetServer();
      await troupe.close();
    },
  };
}
