/**
 * `deno task migrate`: applies the pending migrations of every set to `DATABASE_URL` (the
 * deploy step before an edge release; embedded and self-hosted starts migrate by themselves).
 * Prints what it applied; exit code 1 on a bad configuration or a failed migration.
 */
import { ConfigError, loadConfig } from "./config.ts";
import { openDatabase } from "./open.ts";
import { migrate } from "../db/migrate.ts";

if (import.meta.main) {
  let config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    Deno.exit(1);
  }
  const db = await openDatabase(config);
  try {
    const applied = await migrate(db);
    console.log(
      applied.length
        ? `applied ${applied.length}: ${applied.map((m) => `${m.set}/${m.tag}`).join(", ")}`
        : "up to date",
    );
  } finally {
    await db.close();
  }
}
