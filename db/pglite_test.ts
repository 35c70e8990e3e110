import assert from "node:assert/strict";
import { DirectoryLockedError, openPglite } from "@troupe/runtime/pglite";

Deno.test({
  name: "a PGlite directory has one user at a time; a dead holder's lock is taken over",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-pglite-lock-" });
  const data = `${dir}/pglite`;
  const holder = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    await Deno.writeTextFile(`${data}.lock`, String(holder.pid));
    await assert.rejects(() => openPglite(data), (err: unknown) => {
      assert.ok(err instanceof DirectoryLockedError);
      assert.match(err.message, new RegExp(`pid ${holder.pid}`));
      return true;
    });
    holder.kill("SIGKILL");
    await holder.status;
    const db = await openPglite(data); // the holder is gone: its lock is stale
    assert.equal((await Deno.readTextFile(`${data}.lock`)).trim(), String(Deno.pid));
    assert.deepEqual(await db.query("SELECT 1 AS one"), [{ one: 1 }]);
    await db.close();
    await assert.rejects(() => Deno.stat(`${data}.lock`), Deno.errors.NotFound);
  } finally {
    try {
      holder.kill("SIGKILL");
    } catch { /* exited */ }
    await Deno.remove(dir, { recursive: true });
  }
});
