/**
 * `deno task tenant:key` against a real PostgreSQL: a read-only key made, listed, rotated (the
 * replacement works, the old one expires at once with `--grace 0`), revoked; bad calls exit
 * non-zero with a message.
 */
import assert from "node:assert/strict";
import { openPostgres } from "@troupe/runtime/postgres";
import { TenantStore } from "../db/tenants.ts";
import { createPgDatabase } from "../tests/harness.ts";

const SCRIPT = new URL("./tenant_key.ts", import.meta.url).pathname;

Deno.test({
  name: "tenant:key makes, lists, rotates and revokes keys",
}, async () => {
  const pg = await createPgDatabase();
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, ...args],
      env: { DATABASE_URL: pg.url, LOG_LEVEL: "silent" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    return { code: out.code, text, err: new TextDecoder().decode(out.stderr) };
  };
  const keyOf = (text: string) => /API key \(shown once\): (\S+)/.exec(text)?.[1];
  const db = openPostgres(pg.url);
  try {
    assert.equal((await run("list", "nobody")).code, 1, "the tenant must exist");
    const tenants = new TenantStore(db);
    await tenants.createTenant("acme");
    const made = await run("create", "acme", "--name", "reporting", "--read");
    assert.equal(made.code, 0, made.err);
    const key = keyOf(made.text)!;
    assert.equal((await tenants.authenticate(key))?.scope, "read");
    const { keyId } = JSON.parse(made.text.split("\n")[0]!);

    const listed = await run("list", "acme");
    const rows = listed.text.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((r) => [r.name, r.scope, r.active]), [["reporting", "read", true]]);
    assert(!listed.text.includes(key));

    const rotated = await run("rotate", "acme", keyId, "--grace", "0");
    assert.equal(rotated.code, 0, rotated.err);
    const next = keyOf(rotated.text)!;
    const fresh = new TenantStore(db);
    assert.equal(await fresh.authenticate(key), null, "the old key stopped");
    assert.equal((await fresh.authenticate(next))?.scope, "read");

    const newId = JSON.parse(rotated.text.split("\n")[0]!).keyId;
    assert.equal((await run("revoke", "acme", newId)).code, 0);
    assert.equal(await new TenantStore(db).authenticate(next), null, "revoked");
    const twice = await run("revoke", "acme", newId);
    assert.equal(twice.code, 1);
    assert.match(twice.err, /not found/i);
    assert.equal((await run("rotate", "acme")).code, 2, "usage");
    assert.equal((await run("rotate", "acme", newId, "--grace", "-5")).code, 1);
  } finally {
    await db.close();
    await pg.drop();
  }
});
