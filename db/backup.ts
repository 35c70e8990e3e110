/**
 * Backups of the embedded data directory while the server runs, and their restore.
 *
 * A backup is a gzipped tar: `troupe-backup.json` (a manifest), `pglite/**` (the database
 * files), `blobs/**` (uploaded files), and the directory's keys (`secret.key`,
 * `dev-api-key`) when present.
 *
 * Invariants:
 * - The database part is consistent: its files are copied under `hold` (a checkpoint, then no
 *   statement runs while the copy is made), into `DATA_DIR/backups/<id>/`, and streamed from
 *   there; the copy is removed when the stream ends or is cancelled. The database is held for
 *   the local copy only, not while a client downloads.
 * - Uploaded files are content-addressed and never rewritten, and a file the copied database
 *   holds is not collected for hours (BLOB_GRACE_MS): they stream from their place. Files
 *   still being written (`blobs/tmp`) are left out.
 * - A restore goes into a new directory next to the data directory, checks the manifest and
 *   the database's presence, and only then swaps it in; the old directory is kept aside.
 *   It refuses a data directory in use.
 */
import { dirname, join, relative } from "node:path";
import { readTar, type TarSource, writeTar } from "./tar.ts";

/** What a backup's manifest says. */
export interface BackupManifest {
  format: "troupe-backup";
  version: 1;
  createdAt: string;
  /** Number of files and their bytes, manifest excluded. */
  files: number;
  bytes: number;
}

type Bytes = TransformStream<Uint8Array, Uint8Array>;

/** Runs `fn` while the database runs no statement (after a checkpoint). */
export type Hold = <T>(fn: () => Promise<T>) => Promise<T>;

/** Files of a data directory's top level that a backup keeps. */
const KEY_FILES = ["secret.key", "dev-api-key"];

/**
 * A backup of `dataDir` as a gzipped tar stream; the database directory is copied under
 * `hold` before the first byte. See the module invariants.
 */
export async function backupDataDir(
  dataDir: string,
  hold: Hold,
): Promise<{ stream: ReadableStream<Uint8Array>; manifest: BackupManifest }> {
  const id = `${new Date().toISOString().replace(/[:.]/g, "-")}-${crypto.randomUUID().slice(0, 8)}`;
  const snapshot = join(dataDir, "backups", id);
  const sources: TarSource[] = [];
  try {
    await hold(() => copyTree(join(dataDir, "pglite"), join(snapshot, "pglite")));
    // Directories too: PostgreSQL needs its empty ones (pg_tblspc, pg_notify, ...).
    for await (const file of walk(join(snapshot, "pglite"))) {
      const name = `pglite/${relative(join(snapshot, "pglite"), file.path)}`;
      // The running server's pid file would make the restored directory look in use.
      if (name !== "pglite/postmaster.pid") sources.push(source(name, file));
    }
    const blobs = join(dataDir, "blobs");
    for await (const file of walk(blobs, ["tmp"])) {
      sources.push(source(`blobs/${relative(blobs, file.path)}`, file));
    }
    for (const name of KEY_FILES) {
      const path = join(dataDir, name);
      const info = await Deno.stat(path).catch(() => null);
      if (info?.isFile) sources.push(source(name, { path, size: info.size }));
    }
  } catch (err) {
    await Deno.remove(snapshot, { recursive: true }).catch(() => {});
    throw err;
  }
  const manifest: BackupManifest = {
    format: "troupe-backup",
    version: 1,
    createdAt: new Date().toISOString(),
    files: sources.filter((s) => !("directory" in s)).length,
    bytes: sources.reduce((n, s) => n + ("directory" in s ? 0 : s.size), 0),
  };
  const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
  const cleanup = () => Deno.remove(snapshot, { recursive: true }).catch(() => {});
  async function* entries(): AsyncGenerator<TarSource> {
    try {
      yield {
        name: "troupe-backup.json",
        size: manifestBytes.length,
        body: () => new Blob([manifestBytes]).stream(),
      };
      yield* sources;
    } finally {
      await cleanup();
    }
  }
  const tar = writeTar(entries());
  return { stream: tar.pipeThrough(new CompressionStream("gzip") as Bytes), manifest };
}

/** The backup could not be restored; `message` says why. */
export class RestoreError extends Error {
  override readonly name = "RestoreError";
}

/**
 * Restores a backup stream into `dataDir`, which no process may be using (its database lock
 * file must be absent). The current directory is moved to `<dataDir>.before-restore-<time>`.
 * Returns the manifest and where the old directory went (null when there was none). The stream is
 * read to its end or cancelled, a refusal included, so a file behind it is closed.
 */
export async function restoreDataDir(
  dataDir: string,
  backup: ReadableStream<Uint8Array>,
): Promise<{ manifest: BackupManifest; previous: string | null }> {
  // Loaded here: the module graph of a server without an embedded database holds no PGlite.
  const { directoryHolder } = await import("@troupe/runtime/pglite");
  const holder = await directoryHolder(join(dataDir, "pglite"));
  if (holder !== null) {
    await backup.cancel().catch(() => {});
    throw new RestoreError(
      `${dataDir} is in use by process ${holder}: stop the server before restoring`,
    );
  }
  const target = `${dataDir.replace(/\/+$/, "")}.restoring-${Date.now()}`;
  await Deno.mkdir(target, { recursive: true });
  try {
    let manifest: BackupManifest | null = null;
    let files = 0;
    let bytes = 0;
    const tar = backup.pipeThrough(new DecompressionStream("gzip") as Bytes);
    for await (const entry of readTar(tar)) {
      if (entry.type === "directory") {
        if (!isRestorable(`${entry.name}/`)) {
          throw new RestoreError(`${entry.name}: not a directory a backup holds`);
        }
        await Deno.mkdir(join(target, entry.name), { recursive: true });
        continue;
      }
      if (entry.name === "troupe-backup.json") {
        manifest = parseManifest(await new Response(entry.body).text());
        continue;
      }
      if (!manifest) throw new RestoreError("the archive does not start with its manifest");
      if (!isRestorable(entry.name)) {
        throw new RestoreError(`${entry.name}: not a file a backup holds`);
      }
      const path = join(target, entry.name);
      await Deno.mkdir(dirname(path), { recursive: true });
      const file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
      await entry.body.pipeTo(file.writable);
      files++;
      bytes += entry.size;
    }
    if (!manifest) throw new RestoreError("the archive has no manifest: not a Troupe backup");
    if (files !== manifest.files || bytes !== manifest.bytes) {
      throw new RestoreError(
        `the archive holds ${files} files (${bytes} bytes); its manifest says ${manifest.files} ` +
          `(${manifest.bytes}): it is incomplete`,
      );
    }
    if (!(await Deno.stat(join(target, "pglite", "PG_VERSION")).then(() => true, () => false))) {
      throw new RestoreError("the archive holds no database (pglite/PG_VERSION)");
    }
    let previous: string | null = null;
    if (await Deno.stat(dataDir).then(() => true, () => false)) {
      previous = `${dataDir.replace(/\/+$/, "")}.before-restore-${Date.now()}`;
      await Deno.rename(dataDir, previous);
    }
    await Deno.rename(target, dataDir);
    return { manifest, previous };
  } catch (err) {
    await Deno.remove(target, { recursive: true }).catch(() => {});
    throw err instanceof RestoreError
      ? err
      : new RestoreError(`the backup could not be read: ${(err as Error).message}`);
  }
}

function parseManifest(text: string): BackupManifest {
  let m: Partial<BackupManifest>;
  try {
    m = JSON.parse(text);
  } catch {
    throw new RestoreError("the manifest is not JSON");
  }
  if (m.format !== "troupe-backup" || m.version !== 1) {
    throw new RestoreError("not a Troupe backup of a version this build reads");
  }
  if (!Number.isSafeInteger(m.files) || !Number.isSafeInteger(m.bytes)) {
    throw new RestoreError("the manifest has no file count");
  }
  return m as BackupManifest;
}

/** Whether a backup may hold `name` (a directory's name ends with a slash). */
function isRestorable(name: string): boolean {
  return name.startsWith("pglite/") || name.startsWith("blobs/") || KEY_FILES.includes(name);
}

interface FileInfo {
  path: string;
  size: number;
  directory?: true;
}

function source(name: string, file: FileInfo): TarSource {
  if (file.directory) return { name, directory: true };
  return {
    name,
    size: file.size,
    body: async () => (await Deno.open(file.path, { read: true })).readable,
  };
}

/** Regular files under `root`, in name order, leaving out the top-level directories `skip`. */
async function* walk(root: string, skip: readonly string[] = []): AsyncGenerator<FileInfo> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const e of entries) {
    const path = join(root, e.name);
    if (e.isDirectory && !skip.includes(e.name)) {
      yield { path, size: 0, directory: true };
      yield* walk(path);
    } else if (e.isFile) {
      const info = await Deno.stat(path).catch(() => null);
      if (info) yield { path, size: info.size };
    }
  }
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const a = join(from, e.name), b = join(to, e.name);
    if (e.isDirectory) await copyTree(a, b);
    else if (e.isFile) await Deno.copyFile(a, b);
  }
}
