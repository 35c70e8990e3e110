/**
 * `deno task tenant:limit <name> <requests a minute | default>`: sets a tenant's per-key request
 * limit (`default`: back to RATE_LIMIT_PER_KEY). Running servers apply it within a few seconds
 * (their authentication cache). Uses the database the environment names (`tenant_cli.ts`).
 */
import { parseArgs } from "node:util";
import { runTenantCommand } from "./tenant_cli.ts";

if (import.meta.main) {
  const { positionals } = parseArgs({ args: Deno.args, allowPositionals: true });
  const [name, value] = positionals;
  if (!name || !value || positionals.length > 2) {
    console.error("usage: deno task tenant:limit <name> <requests a minute | default>");
    Deno.exit(2);
  }
  const perMinute = value === "default" ? null : Number(value);
  await runTenantCommand(async (tenants, db, config) => {
    const found = await db.query<{ id: string }>(
      "SELECT id FROM troupe_tenants WHERE name = $1",
      [name],
    );
    if (!found[0]) {
      console.error(`no tenant named "${name}"`);
      return 1;
    }
    const tenant = await tenants.setRateLimit(found[0].id, perMinute, {
      requestId: "cli:tenant:limit",
    });
    console.log(JSON.stringify({
      tenant: tenant.name,
      rateLimitPerMinute: tenant.rateLimitPerMinute ?? config.RATE_LIMIT_PER_KEY,
      own: tenant.rateLimitPerMinute !== null,
    }));
  });
}
