/**
 * `deno task tenant:key`: a tenant's API keys from the command line, on the database the
 * environment names (`tenant_cli.ts`):
 *
 *   deno task tenant:key list <tenant>
 *   deno task tenant:key create <tenant> [--name <label>] [--read] [--admin]
 *   deno task tenant:key rotate <tenant> <key id> [--grace <seconds>]   (default 3600)
 *   deno task tenant:key revoke <tenant> <key id>
 *
 * A new key is printed once (only its hash is stored). Every change is in the tenant's audit
 * log. Running servers apply a revocation within a few seconds (their authentication cache).
 */
import { parseArgs } from "node:util";
import { runTenantCommand } from "./tenant_cli.ts";

const USAGE = "usage: deno task tenant:key list <tenant> | create <tenant> [--name <label>] " +
  "[--read] [--admin] | rotate <tenant> <key id> [--grace <seconds>] | revoke <tenant> <key id>";

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      name: { type: "string", default: "default" },
      read: { type: "boolean", default: false },
      admin: { type: "boolean", default: false },
      grace: { type: "string" },
    },
  });
  const [command, tenantName, keyId] = positionals;
  const arity: Record<string, number> = { list: 2, create: 2, rotate: 3, revoke: 3 };
  if (!command || arity[command] !== positionals.length) {
    console.error(USAGE);
    Deno.exit(2);
  }
  const audit = { requestId: `cli:tenant:key:${command}` };
  await runTenantCommand(async (tenants, db) => {
    const found = await db.query<{ id: string }>(
      "SELECT id FROM troupe_tenants WHERE name = $1",
      [tenantName],
    );
    if (!found[0]) {
      console.error(`no tenant named "${tenantName}"`);
      return 1;
    }
    const tenantId = found[0].id;
    if (command === "list") {
      for (const k of await tenants.listKeys(tenantId)) console.log(JSON.stringify(k));
    } else if (command === "create") {
      const key = await tenants.createKey(tenantId, {
        name: values.name,
        admin: values.admin,
        scope: values.read ? "read" : "full",
        audit,
      });
      console.log(JSON.stringify({ keyId: key.id, prefix: key.prefix }));
      console.log(`API key (shown once): ${key.key}`);
    } else if (command === "rotate") {
      const grace = values.grace === undefined ? undefined : Number(values.grace);
      const key = await tenants.rotateKey(tenantId, keyId!, {
        ...(grace !== undefined ? { graceSeconds: grace } : {}),
        audit,
      });
      console.log(JSON.stringify({
        keyId: key.id,
        prefix: key.prefix,
        replaced: key.replaced.id,
        replacedExpiresAt: key.replaced.expiresAt,
      }));
      console.log(`API key (shown once): ${key.key}`);
    } else {
      await tenants.revokeKey(tenantId, keyId!, audit);
      console.log(JSON.stringify({ revoked: keyId }));
    }
  });
}
