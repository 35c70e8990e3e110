/**
 * The health check writes: a full disk (a tiny tmpfs, filled) or a database that refuses
 * writes makes it 503 with what failed, while reads still work.
 */
import assert from "node:assert/strict";
import { jsonLogger, Runtime, type SqlDatabase, TableQueueTransport } from "@troupe/runtime";
import { migrate } from "../db/migrate.ts";
import { openPglite } from "@troupe/runtime/pglite";
import { TenantStore } from "../db/tenants.ts";
import { databaseWriteProbe, diskWriteProbe, type WriteProbe } from "../db/write_probe.ts";
import { canMountTmpfs, mountTinyTmpfs } from "../tests/hostile/disk.ts";
import { createApp } from "./app.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";

/** A health check over `db` with `probes`, run afresh each call. */
function healthOf(db: SqlDatabase, probes: WriteProbe[]) {
  const runtime = new Runtime({
    db,
    actors: [],
    transport: new TableQueueTransport(db, { pollMs: 50 }),
    logger: jsonLogger("silent"),
  });
  const app = createApp({
    limiter: new MemoryRateLimiter(),
    runtime,
    tenants: new TenantStore(db),
    logger: jsonLogger("silent"),
    health: { probes, probeEveryMs: 0 },
  });
  return async () => {
    const res = await app.request("/api/health");
    return {
      status: res.status,
      retryAfter: res.headers.get("retry-after"),
      // deno-lint-ignore no-explicit-any
      body: await res.json() as any,
    };
  };
}

/** Writes into `dir` until the file system says ENOSPC; returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const path = `${dir}/filler`;
  const file = await Deno.open(path, { write: true, create: true });
  const block = new Uint8Array(64 * 1024);
  try {
    for (;;) await file.write(block);
  } catch (err) {
    assert.equal((err as { code?: string }).code, "ENOSPC");
  } finally {
    file.close();
  }
  return path;
}

const mountable = await canMountTmpfs();

Deno.test({
  name: "health: embedded PGlite on a full disk: reads still work, health is 503 STORAGE_FULL",
  ignore: !mountable,
}, async () => {
  const disk = (await mountTinyTmpfs(200 * 1024 * 1024))!;
  const dir = disk.path;
  const db = await openPglite(`${dir}/pglite`);
  try {
    await migrate(db);
    const health = healthOf(db, [databaseWriteProbe(db), diskWriteProbe(dir)]);
    const before = await health();
    assert.equal(before.status, 200, JSON.stringify(before.body));
    assert.equal(before.body.writes.status, "ok");
    const filler = await fill(dir);
    // Reads answer as before: a check that only reads would say ok.
    assert.ok(Array.isArray(await db.query("SELECT count(*) FROM troupe_jobs")));
    const full = await health();
    assert.equal(full.status, 503, JSON.stringify(full.body));
    assert.equal(full.body.status, "unavailable");
    assert.equal(full.body.error.code, "STORAGE_FULL");
    assert.ok(Number(full.retryAfter) > 0);
    const checks = Object.fromEntries(
      full.body.writes.checks.map((c: { name: string }) => [c.name, c]),
    );
    assert.deepEqual(checks.disk, { name: "disk", ok: false, code: "STORAGE_FULL" });
    await Deno.remove(filler);
    const after = await health();
    assert.equal(after.status, 200, JSON.stringify(after.body));
  } finally {
    await db.close();
    await disk.unmount();
  }
});

Deno.test(
  "health: a database that refuses writes is a 503 naming the write",
  async () => {
    const db = await openPglite();
    try {
      await migrate(db);
      const health = healthOf(db, [databaseWriteProbe(db)]);
      assert.equal((await health()).status, 200);
      // PGlite has one session: from now on it reads and refuses every write.
      await db.query("SET SESSION default_transaction_read_only = on");
      const res = await health();
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.database.status, "ok", "reads work");
      assert.equal(res.body.error.code, "WRITE_FAILED");
      assert.deepEqual(res.body.writes.checks, [{
        name: "database",
        ok: false,
        code: "WRITE_FAILED",
      }]);
    } finally {
      await db.close();
    }
  },
);

Deno.test(
  "health: a data directory that cannot be written is a 503",
  async () => {
    const db = await openPglite();
    const file = await Deno.makeTempFile();
    try {
      await migrate(db);
      // A directory under a regular file: every write there fails (root ignores permissions).
      const health = healthOf(db, [diskWriteProbe(`${file}/data`)]);
      const res = await health();
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.deepEqual(res.body.writes.checks, [{ name: "disk", ok: false, code: "WRITE_FAILED" }]);
    } finally {
      await db.close();
      await Deno.remove(file);
    }
  },
);
