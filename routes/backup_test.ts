/**
 * `GET /api/admin/backup` over an embedded database in a directory: an admin key gets a
 * restorable archive, another key a 403; a server without a data directory answers 409.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { restoreDataDir } from "../db/backup.ts";
import { migrate } from "../db/migrate.ts";
import { openPglite } from "@troupe/runtime/pglite";
import { TenantStore } from "../db/tenants.ts";
import { createApp } from "./app.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";

Deno.test("backup route: admin only, embedded only, restorable", async () => {
  const root = await Deno.makeTempDir();
  const dataDir = join(root, "data");
  const db = await openPglite(join(dataDir, "pglite"));
  try {
    await migrate(db);
    const runtime = new Runtime({
      db,
      actors: [],
      transport: new TableQueueTransport(db, { pollMs: 50 }),
      logger: jsonLogger("silent"),
    });
    const tenants = new TenantStore(db);
    const t = await tenants.createTenant("ops");
    const admin = (await tenants.createKey(t.id, { admin: true })).key;
    const user = (await tenants.createKey(t.id)).key;
    const app = createApp({
      runtime,
      tenants,
      limiter: new MemoryRateLimiter(),
      logger: jsonLogger("silent"),
      dataDir,
    });
    const refused = await app.request("/api/admin/backup", { headers: { "x-api-key": user } });
    assert.equal(refused.status, 403);
    assert.equal((await refused.json()).error.code, "FORBIDDEN");

    const res = await app.request("/api/admin/backup", { headers: { "x-api-key": admin } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/gzip");
    assert.match(res.headers.get("content-disposition") ?? "", /troupe-backup-.*\.tar\.gz/);
    const archive = join(root, "b.tar.gz");
    await Deno.writeFile(archive, new Uint8Array(await res.arrayBuffer()));
    const audit = await tenants.listAudit(t.id);
    assert.equal(audit.items[0]!.action, "data_dir.backup");

    const elsewhere = join(root, "restored");
    await restoreDataDir(elsewhere, (await Deno.open(archive)).readable);
    const copy = await openPglite(join(elsewhere, "pglite"));
    try {
      const [row] = await copy.query<{ name: string }>("SELECT name FROM troupe_tenants");
      assert.equal(row?.name, "ops");
    } finally {
      await copy.close();
    }

    const memory = createApp({
      runtime,
      tenants,
      limiter: new MemoryRateLimiter(),
      logger: jsonLogger("silent"),
    });
    const external = await memory.request("/api/admin/backup", { headers: { "x-api-key": admin } });
    assert.equal(external.status, 409);
    assert.equal((await external.json()).error.code, "NOT_EMBEDDED");
  } finally {
    await db.close();
    await Deno.remove(root, { recursive: true });
  }
});
