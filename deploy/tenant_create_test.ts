/**
 * `deno task tenant:create <name>` against a real PostgreSQL: prints a key once that then
 * authenticates as the new tenant; a taken name is refused with a clear message.
 */
import assert from "node:assert/strict";
import { openPostgres } from "@troupe/runtime/postgres";
import { TenantStore } from "../db/tenants.ts";
import { createPgDatabase } from "../tests/harness.ts";

const SCRIPT = new URL("./tenant_create.ts", import.meta.url).pathname;

Deno.test({
  name: "tenant:create makes a tenant and a working key, once",
}, async () => {
  const pg = await createPgDatabase();
  const run = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, ...args],
      env: { DATABASE_URL: pg.url, LOG_LEVEL: "silent" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  try {
    const first = await run("acme-corp");
    const out = new TextDecoder().decode(first.stdout);
    assert.equal(first.code, 0, new TextDecoder().decode(first.stderr));
    const key = /API key \(shown once\): (\S+)/.exec(out)?.[1];
    assert.ok(key, out);
    const db = openPostgres(pg.url);
    try {
      const principal = await new TenantStore(db).authenticate(key);
      assert.equal(principal?.tenantName, "acme-corp");
      assert.equal(principal?.admin, false, "a key is not an admin's unless asked");
      const stored = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_api_keys WHERE hash LIKE $1",
        [`%${key}%`],
      );
      assert.equal(stored[0]!.n, 0, "the key itself is not stored");
    } finally {
      await db.close();
    }
    const again = await run("acme-corp");
    assert.equal(again.code, 1);
    assert.match(new TextDecoder().decode(again.stderr), /already exists/);
    const more = await run("acme-corp", "--add-key", "--key-name", "ci");
    assert.equal(more.code, 0);
    // A tenant with its own limit, changed later by tenant:limit and back to the default.
    const limited = await run("metered", "--rate-limit", "250");
    assert.equal(limited.code, 0, new TextDecoder().decode(limited.stderr));
    assert.match(new TextDecoder().decode(limited.stdout), /"rateLimitPerMinute":250/);
    const limit = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("./tenant_limit.ts", import.meta.url).pathname, ...args],
        env: { DATABASE_URL: pg.url, LOG_LEVEL: "silent" },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const readLimit = async () => {
      const db = openPostgres(pg.url);
      try {
        return (await db.query<{ r: number | null }>(
          "SELECT rate_limit_per_minute AS r FROM troupe_tenants WHERE name = 'metered'",
        ))[0]!.r;
      } finally {
        await db.close();
      }
    };
    assert.equal(await readLimit(), 250);
    assert.equal((await limit("metered", "5000")).code, 0);
    assert.equal(await readLimit(), 5000);
    assert.equal((await limit("metered", "default")).code, 0);
    assert.equal(await readLimit(), null);
    const badLimit = await limit("metered", "lots");
    assert.equal(badLimit.code, 1);
    assert.match(new TextDecoder().decode(badLimit.stderr), /rate limit/);
    assert.equal((await limit("nobody", "10")).code, 1);
    const admin = await run("ops", "--admin");
    assert.equal(admin.code, 0, new TextDecoder().decode(admin.stderr));
    const adminKey = /API key \(shown once\): (\S+)/.exec(new TextDecoder().decode(admin.stdout))
      ?.[1];
    const adminDb = openPostgres(pg.url);
    try {
      const principal = await new TenantStore(adminDb).authenticate(adminKey!);
      assert.equal(principal?.tenantName, "ops");
      assert.equal(principal?.admin, true);
    } finally {
      await adminDb.close();
    }
    const bad = await run("Not A Name!");
    assert.equal(bad.code, 1);
    assert.match(new TextDecoder().decode(bad.stderr), /tenant name/);
  } finally {
    await pg.drop();
  }
});
