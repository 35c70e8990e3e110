/**
 * `deno task tenant:delete` as an operator runs it: embedded on a data directory (by name),
 * and through a running server's API with an admin key (by id).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openPostgres } from "@troupe/runtime/postgres";
import { TenantStore } from "../db/tenants.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { freePort, startTask, untilUp } from "../tests/start_task.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const script = (name: string) => new URL(`./${name}`, import.meta.url).pathname;

async function run(name: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script(name), ...args],
    cwd: ROOT,
    env: { LOG_LEVEL: "error", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test({
  name: "tenant:delete embedded: deletes by name and prints the counts; usage and unknown refused",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-tenant-delete-cli-" });
  const env = { DATA_DIR: join(dir, "data") };
  try {
    const created = await run("tenant_create.ts", ["gone"], env);
    assert.equal(created.code, 0, created.stderr);
    const tenantId = JSON.parse(created.stdout.split("\n")[0]!).tenantId as string;
    const deleted = await run("tenant_delete.ts", ["gone"], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    const result = JSON.parse(deleted.stdout);
    assert.equal(result.tenantId, tenantId);
    assert.equal(result.status, "done");
    assert.deepEqual(result.removed.keys, { apiKeys: 1 });
    assert.deepEqual(result.removed.tenant, { tenants: 1 });
    // By id again: the same report, nothing else removed.
    const again = await run("tenant_delete.ts", [tenantId], env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), result);
    const unknown = await run("tenant_delete.ts", ["never-was"], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /NOT_FOUND/);
    for (const args of [[], ["a", "b"], ["--all"]]) {
      const bad = await run("tenant_delete.ts", args, env);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /usage: deno task tenant:delete/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "tenant:delete through a running server: an admin key's DELETE, followed to its end",
}, async () => {
  const pg = await createPgDatabase();
  const db = openPostgres(pg.url);
  const port = freePort();
  const task = await startTask();
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    cwd: ROOT,
    env: { ...task.env, DATABASE_URL: pg.url, PORT: String(port), LOG_LEVEL: "warn" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}`;
    await untilUp(`${url}/api/health`, server, { timeoutMs: 90_000 });
    const tenants = new TenantStore(db);
    const doomed = await tenants.createTenant("doomed");
    await tenants.createKey(doomed.id);
    const ops = await tenants.createTenant("ops");
    const admin = (await tenants.createKey(ops.id, { admin: true })).key;
    const plain = (await tenants.createKey(ops.id)).key;
    const env = { DATABASE_URL: pg.url, TROUPE_URL: url };

    const refused = await run("tenant_delete.ts", [doomed.id], { ...env, TROUPE_API_KEY: plain });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /FORBIDDEN/);

    const deleted = await run("tenant_delete.ts", [doomed.id], { ...env, TROUPE_API_KEY: admin });
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stderr, new RegExp(`via ${url}`));
    const result = JSON.parse(deleted.stdout);
    assert.deepEqual(result.removed.keys, { apiKeys: 1 });
    assert.deepEqual(result.removed.tenant, { tenants: 1 });
    const left = await db.query("SELECT 1 FROM troupe_tenants WHERE id = $1", [doomed.id]);
    assert.equal(left.length, 0);
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await db.close();
    await pg.drop();
  }
});
