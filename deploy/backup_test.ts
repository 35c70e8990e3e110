/**
 * `deno task backup` / `deno task restore` on a data directory no server holds: the backup
 * restores elsewhere with the same rows; bad calls exit non-zero with a message.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { migrate } from "../db/migrate.ts";
import { openPglite } from "@troupe/runtime/pglite";
import { TenantStore } from "../db/tenants.ts";

const SCRIPT = new URL("./backup.ts", import.meta.url).pathname;

Deno.test({
  name: "backup and restore tasks on a stopped data directory",
}, async () => {
  const root = await Deno.makeTempDir();
  const run = async (dataDir: string, ...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCRIPT, ...args],
      env: { DATA_DIR: dataDir, LOG_LEVEL: "silent" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
  };
  try {
    const source = join(root, "data");
    const db = await openPglite(join(source, "pglite"));
    await migrate(db);
    await new TenantStore(db).createTenant("acme");
    await db.close();

    const file = join(root, "b.tar.gz");
    const made = await run(source, "backup", file);
    assert.equal(made.code, 0, made.err);
    assert(JSON.parse(made.out).bytes > 100_000);

    const target = join(root, "elsewhere");
    const restored = await run(target, "restore", file);
    assert.equal(restored.code, 0, restored.err);
    assert.equal(JSON.parse(restored.out).previous, null);
    const copy = await openPglite(join(target, "pglite"));
    try {
      const rows = await copy.query<{ name: string }>("SELECT name FROM troupe_tenants");
      assert.deepEqual(rows.map((r) => r.name), ["acme"]);
    } finally {
      await copy.close();
    }
    const again = await run(target, "restore", file);
    assert.equal(again.code, 0, "restoring over a directory keeps the old one aside");
    assert.match(JSON.parse(again.out).previous, /elsewhere\.before-restore-\d+$/);

    await Deno.writeTextFile(join(root, "junk.tar.gz"), "junk");
    const junk = await run(target, "restore", join(root, "junk.tar.gz"));
    assert.equal(junk.code, 1);
    assert.match(junk.err, /could not be read/);
    assert.equal((await run(target, "backup")).code, 2, "usage");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
