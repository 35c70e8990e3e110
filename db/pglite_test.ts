import assert from "node:assert/strict";
import {
  COPY_STAGING_MAX_BYTES,
  CopyStaging,
  DirectoryLockedError,
  openPglite,
} from "@troupe/runtime/pglite";

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

Deno.test("COPY staging: one kept buffer of each COPY's exact length; a larger COPY its own", () => {
  const staging = new CopyStaging();
  const enc = new TextEncoder();
  const a = staging.fill([enc.encode("1\tone\n"), enc.encode("2\ttwo\n")]);
  assert.equal(new TextDecoder().decode(a), "1\tone\n2\ttwo\n");
  const b = staging.fill("3\tthree\n");
  assert.equal(b, a, "the kept buffer serves the next COPY");
  assert.equal(b.byteLength, 8, "of exactly the COPY's length");
  assert.equal(new TextDecoder().decode(b), "3\tthree\n");
  const big = staging.fill(new Uint8Array(COPY_STAGING_MAX_BYTES + 1).fill(65));
  assert.notEqual(big, a);
  assert.equal(big.byteLength, COPY_STAGING_MAX_BYTES + 1);
  assert.equal(new TextDecoder().decode(staging.fill([])), "", "an empty COPY: no bytes");
});

Deno.test("PGlite COPY: a shorter COPY after a longer one stores its rows only", async () => {
  const db = await openPglite();
  try {
    await db.query("CREATE TABLE staged (id bigint PRIMARY KEY, v text)");
    const rows = (from: number, n: number, v: string) =>
      Array.from({ length: n }, (_, i) => `${from + i}\t${v}\n`).join("");
    const enc = new TextEncoder();
    await db.copyIn!("staged", ["id", "v"], [enc.encode(rows(0, 500, "long value ".repeat(8)))]);
    await db.transaction(async (tx) => {
      await tx.copyIn!("staged", ["id", "v"], [enc.encode(rows(1000, 3, "short"))]);
    });
    const n = await db.query<{ n: number; short: number }>(
      "SELECT count(*)::int AS n, count(*) FILTER (WHERE v = 'short')::int AS short FROM staged",
    );
    assert.deepEqual(n, [{ n: 503, short: 3 }]);
  } finally {
    await db.close();
  }
});
