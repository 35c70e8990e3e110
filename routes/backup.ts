/**
 * `GET /api/admin/backup` (an admin key): a consistent backup of the embedded data directory
 * while the server runs, streamed as a gzipped tar (see db/backup.ts). A server on an external
 * database answers 409: back that database up with its own tools (pg_dump, Neon branches).
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { type SqlDatabase, TroupeError } from "@troupe/runtime";
import type { TenantStore } from "../db/tenants.ts";
import { backupDataDir } from "../db/backup.ts";
import { principalOf } from "./auth.ts";
import { auditContext } from "./jobs.ts";
import { declare } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

export interface BackupRoutesOptions {
  /** The embedded data directory; absent on an external database. */
  dataDir?: string;
  db: SqlDatabase;
  tenants: TenantStore;
}

export function backupRoutes({ dataDir, db, tenants }: BackupRoutesOptions): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  declare(app, {
    method: "get",
    path: "/admin/backup",
    tags: ["admin"],
    summary:
      "A consistent tar.gz of the embedded data directory (admin key; 409 on an external database)",
    responses: { 200: { description: "The archive", type: "application/gzip" } },
  }, async function backup(c) {
    if (!principalOf(c).admin) {
      throw new TroupeError("FORBIDDEN", "a backup needs an admin key");
    }
    if (!dataDir || !db.hold) {
      throw new TroupeError(
        "NOT_EMBEDDED",
        "this server uses an external database: back it up with the database's own tools",
      );
    }
    const hold = db.hold.bind(db);
    const { stream, manifest } = await backupDataDir(dataDir, hold);
    await tenants.audit({
      ...auditContext(c),
      action: "data_dir.backup",
      targetType: "data_dir",
      details: { files: manifest.files, bytes: manifest.bytes },
    });
    const name = `troupe-backup-${manifest.createdAt.replace(/[:.]/g, "-")}.tar.gz`;
    return new Response(stream, {
      headers: {
        "content-type": "application/gzip",
        "content-disposition": `attachment; filename="${name}"`,
        "x-backup-files": String(manifest.files),
        "x-backup-bytes": String(manifest.bytes),
      },
    });
  });
  return app;
}
