/**
 * `storageFailure()` on errors the real drivers raise: PGlite and node-postgres, a server gone,
 * a backend terminated, a value out of range, a full disk under PGlite.
 */
import assert from "node:assert/strict";
import { createPgDatabase } from "../tests/harness.ts";
import { canMountTmpfs, mountTinyTmpfs } from "../tests/hostile/disk.ts";
import { sqlState, storageFailure } from "./errors.ts";
import { openNeon } from "@troupe/runtime/neon";
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}

Deno.test(
  "storageFailure() on PGlite: out of range, a bug, closed",
  async () => {
    const db = await openPglite();
    const range = await errorOf(db.query("SELECT '1e400'::float8"));
    assert.equal(sqlState(range), "22003");
    assert.equal(storageFailure(range), "bad_value");
    assert.equal(
      storageFailure(await errorOf(db.query("SELEC 1"))),
      null,
      "a syntax error is a bug",
    );
    assert.equal(storageFailure(await errorOf(db.query("SELECT * FROM nope"))), null);
    await db.close();
    assert.equal(storageFailure(await errorOf(db.query("SELECT 1"))), "database_unavailable");
  },
);

Deno.test(
  "storageFailure() on PostgreSQL: refused, terminated, out of range",
  async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const closed = openPostgres(`postgres://postgres@127.0.0.1:${port}/none`, { max: 1 });
    assert.equal(storageFailure(await errorOf(closed.query("SELECT 1"))), "database_unavailable");
    await closed.close();
    const { url, drop } = await createPgDatabase();
    const db = openPostgres(url, { max: 2 });
    try {
      assert.equal(storageFailure(await errorOf(db.query("SELECT 'x'::int"))), "bad_value");
      assert.equal(storageFailure(await errorOf(db.query("SELECT nope"))), null);
      const killed = await errorOf(db.query("SELECT pg_terminate_backend(pg_backend_pid())"));
      assert.equal(storageFailure(killed), "database_unavailable", String(killed));
    } finally {
      await db.close();
      await drop();
    }
    const gone = openPostgres(url, { max: 1 });
    const missing = await errorOf(gone.query("SELECT 1"));
    assert.equal(sqlState(missing), "3D000");
    assert.equal(storageFailure(missing), "database_unavailable");
    await gone.close();
  },
);

Deno.test(
  "storageFailure() on the Neon driver: a proxy that is not there",
  async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const db = openNeon("postgres://postgres@127.0.0.1:5432/postgres", {
      max: 1,
      wsProxy: `127.0.0.1:${port}/v1?address={host}:{port}`,
    });
    const err = await errorOf(db.query("SELECT 1"));
    assert.equal(storageFailure(err), "database_unavailable", String(err));
    await db.close().catch(() => {});
  },
);

Deno.test({
  name: "storageFailure() on PGlite over a full disk: 53100, storage full",
  ignore: !(await canMountTmpfs()),
}, async () => {
  const disk = (await mountTinyTmpfs(200 * 1024 * 1024))!;
  try {
    const db = await openPglite(`${disk.path}/pglite`);
    await db.query("CREATE TABLE t (x text)");
    const filler = await Deno.open(`${disk.path}/filler`, { write: true, create: true });
    await errorOf((async () => {
      for (;;) await filler.write(new Uint8Array(64 * 1024));
    })());
    filler.close();
    const full = await errorOf((async () => {
      for (let i = 0; i < 100; i++) {
        await db.query("INSERT INTO t SELECT repeat('x', 1000) FROM generate_series(1, 20000)");
      }
    })());
    assert.equal(storageFailure(full), "storage_full", String(full));
    await db.close();
  } finally {
    await disk.unmount();
  }
});
