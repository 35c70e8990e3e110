/**
 * Infrastructure failures through the routes: a database that is gone (dropped, a closed port,
 * a closed PGlite) and a full disk are 503s with `Retry-After` and a code, never 500s.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { echoActor } from "../actors/system/echo.ts";
import { jsonLogger, Runtime, type SqlDatabase, TableQueueTransport } from "@troupe/runtime";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import { storageFailure } from "../db/errors.ts";
import { migrate } from "../db/migrate.ts";
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { TenantStore } from "../db/tenants.ts";
import pg from "pg";
import { ADMIN_URL, createPgDatabase, neonTarget } from "../tests/harness.ts";
import { canMountTmpfs, mountTinyTmpfs } from "../tests/hostile/disk.ts";
import { createApp } from "./app.ts";
import type { AppEnv } from "./env.ts";
import { onError } from "./errors.ts";
import { localDatasetAdapters } from "../tests/local_adapters.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";

/** The app over `db`, started, with a tenant's key. */
async function served(
  db: SqlDatabase,
  extra: Parameters<typeof createApp>[0]["datasets"] = undefined,
) {
  const runtime = new Runtime({
    db,
    actors: [
      echoActor,
      ...(extra ? datasetActors({ ...localDatasetAdapters(), db, blobs: extra.blobs }) : []),
    ],
    transport: new TableQueueTransport(db, { pollMs: 50 }),
    logger: jsonLogger("silent"),
  });
  await runtime.start();
  const tenants = new TenantStore(db);
  const key = (await tenants.createKey((await tenants.createTenant("acme")).id)).key;
  const app = createApp({
    limiter: new MemoryRateLimiter(),
    runtime,
    tenants,
    logger: jsonLogger("silent"),
    ...(extra ? { datasets: extra } : {}),
  });
  const call = (path: string, init: RequestInit = {}) =>
    app.request(path, {
      ...init,
      headers: { "x-api-key": key, "content-type": "application/json", ...init.headers },
    });
  return { runtime, call };
}

async function assertUnavailable(res: Response, code = "DATABASE_UNAVAILABLE") {
  const body = await res.json();
  assert.equal(res.status, 503, JSON.stringify(body));
  assert.equal(body.error.code, code);
  assert.ok(Number(res.headers.get("retry-after")) > 0, "Retry-After in seconds");
}

Deno.test({
  name: "unavailable: a dropped PostgreSQL database: submitting and listing jobs are 503",
}, async () => {
  const { url, drop } = await createPgDatabase();
  const db = openPostgres(url, { max: 4 });
  await migrate(db);
  const { runtime, call } = await served(db);
  try {
    assert.equal((await call("/api/jobs")).status, 200);
    await drop();
    await assertUnavailable(
      await call("/api/actors/system.echo/jobs", {
        method: "POST",
        body: JSON.stringify({ input: {} }),
      }),
    );
    await assertUnavailable(await call("/api/jobs"));
    const health = await call("/api/health");
    assert.equal(health.status, 503);
  } finally {
    await runtime.stop(100).catch(() => {});
    await db.close().catch(() => {});
    await drop();
  }
});

Deno.test({
  name: "unavailable: a dropped database through the Neon driver: jobs are 503",
}, async () => {
  const tdb = await neonTarget.open();
  const { runtime, call } = await served(tdb.db);
  try {
    assert.equal((await call("/api/jobs")).status, 200);
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE ${new URL(tdb.url!).pathname.slice(1)} WITH (FORCE)`);
    await admin.end();
    await assertUnavailable(await call("/api/jobs"));
    await assertUnavailable(
      await call("/api/actors/system.echo/jobs", { method: "POST", body: '{"input":{}}' }),
    );
  } finally {
    await runtime.stop(100).catch(() => {});
    await tdb.cleanup().catch(() => {});
  }
});

Deno.test({
  name: "unavailable: a pool pointed at a closed port answers 503, not 500",
}, async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const db = openPostgres(`postgres://postgres@127.0.0.1:${port}/none`, { max: 2 });
  const app = createApp({
    limiter: new MemoryRateLimiter(),
    runtime: new Runtime({
      db,
      actors: [echoActor],
      transport: new TableQueueTransport(db),
      logger: jsonLogger("silent"),
    }),
    tenants: new TenantStore(db),
    logger: jsonLogger("silent"),
  });
  try {
    const headers = { "x-api-key": `trp_${"x".repeat(40)}` };
    await assertUnavailable(await app.request("/api/jobs", { headers }));
    await assertUnavailable(
      await app.request("/api/actors/system.echo/jobs", {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: "{}",
      }),
    );
  } finally {
    await db.close().catch(() => {});
  }
});

Deno.test({ name: "unavailable: a closed PGlite answers 503" }, async () => {
  const db = await openPglite();
  await migrate(db);
  const { runtime, call } = await served(db);
  await runtime.stop(100);
  assert.equal((await call("/api/jobs")).status, 200);
  await db.close();
  await assertUnavailable(await call("/api/jobs"));
  await assertUnavailable(
    await call("/api/actors/system.echo/jobs", { method: "POST", body: '{"input":{}}' }),
  );
});

Deno.test("unavailable: the OS's ENOSPC (a write to /dev/full) is a 503 STORAGE_FULL", async () => {
  let enospc: unknown;
  try {
    await Deno.writeFile("/dev/full", new Uint8Array(16));
  } catch (err) {
    enospc = err;
  }
  assert.ok(enospc, "/dev/full refused the write");
  assert.equal(storageFailure(enospc), "storage_full");
  assert.equal(storageFailure(new Error("wrapped", { cause: enospc })), "storage_full");
  const app = new Hono<AppEnv>();
  app.get("/x", () => {
    throw enospc;
  });
  app.onError(onError(jsonLogger("silent")));
  await assertUnavailable(await app.request("/x"), "STORAGE_FULL");
});

const mountable = await canMountTmpfs();

Deno.test({
  name: "unavailable: a dataset upload to a full disk (a 256 KiB tmpfs) is a 503 STORAGE_FULL",
  ignore: !mountable,
}, async () => {
  const disk = (await mountTinyTmpfs(256 * 1024))!;
  const db = await openPglite();
  await migrate(db);
  const blobs = new FsBlobStore(`${disk.path}/blobs`);
  const { runtime, call } = await served(db, { db, blobs, maxBytes: 8 << 20 });
  try {
    const csv = "a,b\n" + "123456,abcdef\n".repeat(80_000); // ~1 MB
    const res = await call("/api/datasets?name=full", {
      method: "POST",
      headers: { "content-type": "text/csv" },
      body: csv,
    });
    await assertUnavailable(res, "STORAGE_FULL");
    assert.equal(
      (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM troupe_datasets"))[0]!.n,
      0,
      "nothing half-accepted",
    );
  } finally {
    await runtime.stop(100);
    await db.close();
    await disk.unmount();
  }
});
