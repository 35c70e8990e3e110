/**
 * Backups of the embedded data directory (DATA_DIR):
 *
 *   deno task backup <file.tar.gz>    a consistent snapshot, the server running or not
 *   deno task restore <file.tar.gz>   with the server stopped; the old directory is kept aside
 *
 * While a server holds the directory, `backup` asks it (`GET /api/admin/backup` at
 * `TROUPE_URL`, default `http://HOST:PORT`, with the admin key in `TROUPE_API_KEY`); otherwise
 * it opens the directory itself. A server on an external database (DATABASE_URL) is backed up
 * with that database's tools.
 */
import { join } from "node:path";
import { backupDataDir, restoreDataDir, RestoreError } from "../db/backup.ts";
import { directoryHolder, openPglite } from "@troupe/runtime/pglite";
import { ConfigError, loadConfig } from "./config.ts";

const USAGE = "usage: deno task backup <file.tar.gz> | deno task restore <file.tar.gz>";

async function backup(file: string): Promise<number> {
  const config = loadConfig(Deno.env.toObject());
  if (config.DATABASE_URL) {
    console.error("DATABASE_URL is set: back that database up with its own tools (pg_dump)");
    return 1;
  }
  let stream: ReadableStream<Uint8Array>;
  let close = () => Promise.resolve();
  const holder = await directoryHolder(join(config.DATA_DIR, "pglite"));
  if (holder !== null) {
    const base = Deno.env.get("TROUPE_URL") ?? `http://${config.HOST}:${config.PORT}`;
    const key = Deno.env.get("TROUPE_API_KEY");
    if (!key) {
      console.error(
        `the server (pid ${holder}) holds ${config.DATA_DIR}: set TROUPE_API_KEY to an admin ` +
          "key to back up through it",
      );
      return 1;
    }
    const res = await fetch(`${base}/api/admin/backup`, { headers: { "x-api-key": key } });
    if (!res.ok || !res.body) {
      const body = await res.text();
      console.error(`the server refused the backup (${res.status}): ${body}`);
      return 1;
    }
    stream = res.body;
  } else {
    const db = await openPglite(join(config.DATA_DIR, "pglite"));
    close = () => db.close();
    stream = (await backupDataDir(config.DATA_DIR, db.hold!.bind(db))).stream;
  }
  const partial = `${file}.partial`;
  try {
    const out = await Deno.open(partial, { write: true, create: true, truncate: true });
    await stream.pipeTo(out.writable);
    await Deno.rename(partial, file);
  } catch (err) {
    await Deno.remove(partial).catch(() => {});
    throw err;
  } finally {
    await close();
  }
  console.log(JSON.stringify({ backup: file, bytes: (await Deno.stat(file)).size }));
  return 0;
}

async function restore(file: string): Promise<number> {
  const config = loadConfig(Deno.env.toObject());
  try {
    const { manifest, previous } = await restoreDataDir(
      config.DATA_DIR,
      (await Deno.open(file)).readable,
    );
    console.log(JSON.stringify({ restored: config.DATA_DIR, from: file, manifest, previous }));
    return 0;
  } catch (err) {
    if (!(err instanceof RestoreError)) throw err;
    console.error(err.message);
    return 1;
  }
}

if (import.meta.main) {
  const [command, file] = Deno.args;
  if ((command !== "backup" && command !== "restore") || !file || Deno.args.length !== 2) {
    console.error(USAGE);
    Deno.exit(2);
  }
  try {
    Deno.exit(command === "backup" ? await backup(file) : await restore(file));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      Deno.exit(1);
    }
    throw err;
  }
}
