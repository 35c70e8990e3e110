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
import { TenantStore } from "./db/tenants.ts";
import { type Config, ConfigError, loadConfig } from "./deploy/config.ts";
import { createApp } from "./routes/app.ts";

export interface Composed {
  config: Config;
  db: SqlDatabase;
  runtime: Runtime;
  tenants: TenantStore;
  /** The embedded dev tenant's key when this start created it (shown once). */
  newDevKey: string | null;
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
  const tenants = new TenantStore(db);
  const newDevKey = await bootstrapDevTenant(config, tenants);
  const app = createApp({
    runtime,
    tenants,
    logger,
    perIpPerMinute: config.RATE_LIMIT_PER_IP,
    perKeyPerMinute: config.RATE_LIMIT_PER_KEY,
    trustProxy: config.TRUST_PROXY,
  });
  return {
    config,
    db,
    runtime,
    tenants,
    newDevKey,
    app,
    async close() {
      await runtime.stop();
      await db.close();
    },
  };
}

/**
 * The `dev` tenant: with DEV_API_KEY, that key is (idempotently) the dev tenant's; otherwise the
 * embedded start creates the tenant and a key the first time, returns it to be shown once, and
 * leaves it in `DATA_DIR/dev-api-key` for scripts on this machine. Production starts (a
 * `DATABASE_URL`) create nothing unless DEV_API_KEY asks.
 */
async function bootstrapDevTenant(config: Config, tenants: TenantStore): Promise<string | null> {
  if (config.DEV_API_KEY) {
    const dev = await tenants.ensureTenant("dev");
    await tenants.createKey(dev.id, { name: "DEV_API_KEY", key: config.DEV_API_KEY });
    return null;
  }
  if (config.DATABASE_URL) return null;
  const keyFile = join(config.DATA_DIR, "dev-api-key");
  if (await exists(keyFile)) return null;
  const dev = await tenants.ensureTenant("dev");
  const { key } = await tenants.createKey(dev.id, { name: "embedded dev key" });
  await Deno.writeTextFile(keyFile, key + "\n", { mode: 0o600 });
  return key;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
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
  if (troupe.newDevKey) {
    console.log(
      `\nDev tenant API key (shown once, also saved in ${
        join(config.DATA_DIR, "dev-api-key")
      }):\n  ${troupe.newDevKey}\nTry: curl -H "X-API-Key: ${troupe.newDevKey}" http://${config.HOST}:${config.PORT}/api/jobs\n`,
    );
  }
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
