/**
 * `deno task tenant:limit <name> <requests a minute | default>`: sets a tenant's per-key request
 * limit (`default`: back to RATE_LIMIT_PER_KEY). Running servers apply it within a few seconds
 * (their authentication cache). Uses the database the environment names, as tenant:create does.
 */
import { parseArgs } from "node:util";
import { TroupeError } from "../actors/runtime/errors.ts";
import { migrate } from "../db/migrate.ts";
import { TenantStore } from "../db/tenants.ts";
import { ConfigError, loadConfig } from "./config.ts";

if (import.meta.main) {
  const { positionals } = parseArgs({ args: Deno.args, allowPositionals: true });
  const [name, value] = positionals;
  if (!name || !value || positionals.length > 2) {
    console.error("usage: deno task tenant:limit <name> <requests a minute | default>");
    Deno.exit(2);
  }
  const perMinute = value === "default" ? null : Number(value);
  let exitCode = 0;
  try {
    const config = loadConfig(Deno.env.toObject());
    const { openDatabase } = await import("../main.ts");
    const db = await openDatabase(config);
    try {
      await migrate(db);
      const tenants = new TenantStore(db);
      const found = await db.query<{ id: string }>(
        "SELECT id FROM troupe_tenants WHERE name = $1",
        [name],
      );
      if (!found[0]) {
        console.error(`no tenant named "${name}"`);
        exitCode = 1;
      } else {
        const tenant = await tenants.setRateLimit(found[0].id, perMinute, {
          requestId: "cli:tenant:limit",
        });
        console.log(JSON.stringify({
          tenant: tenant.name,
          rateLimitPerMinute: tenant.rateLimitPerMinute ?? config.RATE_LIMIT_PER_KEY,
          own: tenant.rateLimitPerMinute !== null,
        }));
      }
    } finally {
      await db.close();
    }
  } catch (err) {
    if (err instanceof ConfigError || (err instanceof TroupeError && err.status < 500)) {
      console.error(err.message);
      exitCode = 1;
    } else throw err;
  }
  Deno.exit(exitCode);
}
