/**
 * The composition root: config -> drivers -> runtime -> routes -> serve.
 * The only file that knows which database and transport run.
 */
import { join } from "node:path";
import { cleanupActor } from "./actors/system/cleanup.ts";
import { echoActor } from "./actors/system/echo.ts";
import type { AnyActor } from "./actors/runtime/define.ts";
import { jsonLogger, type SqlDatabase } from "./actors/runtime/ports.ts";
import { Runtime } from "./actors/runtime/runtime.ts";
import { TableQueueTransport } from "./actors/transports/table_queue.ts";
import { migrate } from "./db/migrate.ts";
import { openPglite } from "./db/pglite.ts";
import { openPostgres } from "./db/postgres.ts";
import { type Config, ConfigError, loadConfig } from "./deploy/config.ts";
import { createApp } from "./routes/app.ts";

export interface Composed {
  config: Config;
  db: SqlDatabase;
  runtime: Runtime;
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

/** Builds every piece from `config` and starts the runtime (no HTTP listener). */
export async function compose(config: Config, extraActors: AnyActor[] = []): Promise<Composed> {
  const logger = jsonLogger(config.LOG_LEVEL);
  const db = config.DATABASE_URL
    ? openPostgres(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE })
    : await openPglite(join(config.DATA_DIR, "pglite"));
  const applied = await migrate(db);
  if (applied.length) logger.info("migrations applied", { applied });
  const actors: AnyActor[] = [
    cleanupActor({ db, retentionDays: config.RETENTION_DAYS }),
    echoActor,
    ...extraActors,
  ];
  const transport = new TableQueueTransport(db);
  const runtime = new Runtime({
    db,
    actors,
    transport,
    logger,
    concurrency: config.WORKER_CONCURRENCY,
    leaseMs: config.LEASE_MS,
  });
  await runtime.start();
  const app = createApp({ runtime, logger });
  return {
    config,
    db,
    runtime,
    app,
    async close() {
      await runtime.stop();
      await db.close();
    },
  };
}

if (import.meta.main) {
  let config: Config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    Deno.exit(1);
  }
  const troupe = await compose(config);
  const log = troupe.runtime.log;
  troupe.runtime.registerSchedules((name, schedule, fn) => Deno.cron(name, schedule, fn));
  const server = Deno.serve({
    port: config.PORT,
    hostname: config.HOST,
    onListen: ({ hostname, port }) =>
      log.info("troupe listening", {
        url: `http://${hostname}:${port}`,
        database: troupe.db.dialect,
        transport: troupe.runtime.transport.name,
        actors: [...troupe.runtime.actors.keys()],
      }),
  }, troupe.app.fetch);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down");
    await server.shutdown();
    await troupe.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
}
