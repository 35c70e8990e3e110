/**
 * `deno task tenant:create <name> [--key-name <label>] [--rate-limit <per minute>]`: creates a
 * tenant (with its own per-key request limit when given) and an API key, and prints the key once
 * (only its hash is stored), on the database the environment names (`tenant_cli.ts`).
 *
 * `deno task tenant:create <name> --add-key` adds a key to an existing tenant; `--admin` makes
 * the key an operator's (it also sees every tenant's cache statistics and may invalidate any
 * tenant's cache entries).
 */
import { parseArgs } from "node:util";
import { runTenantCommand } from "./tenant_cli.ts";

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      "key-name": { type: "string", default: "default" },
      "add-key": { type: "boolean", default: false },
      admin: { type: "boolean", default: false },
      "rate-limit": { type: "string" },
    },
  });
  const rateLimit = values["rate-limit"] === undefined ? null : Number(values["rate-limit"]);
  const name = positionals[0];
  if (!name || positionals.length > 1) {
    console.error(
      "usage: deno task tenant:create <name> [--key-name <label>] [--add-key] [--admin] " +
        "[--rate-limit <requests a minute>]",
    );
    Deno.exit(2);
  }
  await runTenantCommand(async (tenants) => {
    let tenant = values["add-key"]
      ? await tenants.ensureTenant(name)
      : await tenants.createTenant(name, { rateLimitPerMinute: rateLimit });
    if (values["add-key"] && rateLimit !== null) {
      tenant = await tenants.setRateLimit(tenant.id, rateLimit, {
        requestId: "cli:tenant:create",
      });
    }
    const key = await tenants.createKey(tenant.id, {
      name: values["key-name"],
      admin: values.admin,
      audit: { requestId: "cli:tenant:create" },
    });
    console.log(JSON.stringify({
      tenant: tenant.name,
      tenantId: tenant.id,
      keyId: key.id,
      ...(values.admin ? { admin: true } : {}),
      ...(tenant.rateLimitPerMinute !== null
        ? { rateLimitPerMinute: tenant.rateLimitPerMinute }
        : {}),
    }));
    console.log(`API key (shown once): ${key.key}`);
  });
}
