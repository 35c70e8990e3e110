/**
 * What the tenant commands share: the database the environment names (DATABASE_URL, or the
 * embedded PGlite under DATA_DIR: stop the server first, an embedded database has one user at a
 * time), migrated, a `TenantStore` over it, and the exit: 0, or 1 with the message of a bad
 * configuration or a refused request (a taken name, a bad limit).
 */
import { type SqlDatabase, TroupeError } from "@troupe/runtime";
import { migrate } from "../db/migrate.ts";
import { TenantStore } from "../db/tenants.ts";
import { statusOf } from "../routes/errors.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";

/** Runs `fn` over the tenants, then exits; `fn` returns the exit code (0 by default). */
export async function runTenantCommand(
  fn: (tenants: TenantStore, db: SqlDatabase, config: Config) => Promise<number | void>,
): Promise<never> {
  let exitCode = 0;
  try {
    const config = loadConfig(Deno.env.toObject());
    const { openDatabase } = await import("./open.ts");
    const db = await openDatabase(config);
    try {
      await migrate(db);
      exitCode = (await fn(new TenantStore(db), db, config)) ?? 0;
    } finally {
      await db.close();
    }
  } catch (err) {
    if (err instanceof ConfigError || (err instanceof TroupeError && statusOf(err) < 500)) {
      console.error(err.message);
      exitCode = 1;
    } else throw err;
  }
  Deno.exit(exitCode);
}
