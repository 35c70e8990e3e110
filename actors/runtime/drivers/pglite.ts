/** Embedded PostgreSQL (PGlite, WASM) adapter: one process, a directory on disk or memory. */
import { PGlite } from "@electric-sql/pglite";
import { type CopyData, copyParts, type SqlDatabase, type SqlExecutor } from "../ports.ts";

/**
 * Opens PGlite at `dataDir` (a directory), or in memory when it is undefined.
 *
 * A directory has one user at a time: a second process opening it would corrupt it, so a
 * lock file (`<dataDir>.lock`, holding the pid) refuses it with a clear message. A lock left
 * by a process that no longer runs is taken over.
 */
export async function openPglite(
  dataDir?: string,
  options: PgliteOptions = {},
): Promise<SqlDatabase> {
  let unlock = () => Promise.resolve();
  if (dataDir) {
    await Deno.mkdir(dataDir, { recursive: true });
    unlock = await lockDirectory(dataDir);
  }
  const settings = {
    postgresqlconf: [`shared_buffers = ${options.sharedBuffersMb ?? 16}MB`],
  };
  let pg: PGlite;
  try {
    const fresh = dataDir !== undefined && !(await exists(`${dataDir}/PG_VERSION`));
    // The first open runs initdb, whose WASM heap (~640 MB) stays mapped as long as the
    // instance lives: a child process does it when it can; otherwise this process does, and
    // reopens the directory so that the first instance is left to the collector.
    const initialised = fresh && await initInChild(dataDir!);
    pg = await PGlite.create(dataDir ? { dataDir, ...settings } : settings);
    if (fresh && !initialised) {
      await pg.close();
      pg = await PGlite.create({ dataDir, ...settings });
    }
  } catch (err) {
    await unlock();
    throw err;
  }
  // PGlite runs one query at a time; transactions are exclusive by construction.
  const staging = new CopyStaging();
  const copyIn = copyVia(pg, staging);
  const exec: SqlExecutor = {
    async query<T>(text: string, params?: readonly unknown[]) {
      const res = await pg.query<T>(text, params ? [...params] : undefined);
      return res.rows;
    },
    copyIn,
  };
  return {
    dialect: "pglite",
    shared: false,
    autovacuum: false,
    query: exec.query,
    copyIn,
    transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      return pg.transaction((tx) =>
        fn({
          async query<R>(text: string, params?: readonly unknown[]) {
            const res = await tx.query<R>(text, params ? [...params] : undefined);
            return res.rows;
          },
          copyIn: copyVia(tx, staging),
        })
      );
    },
    async hold<T>(fn: () => Promise<T>): Promise<T> {
      await pg.query("CHECKPOINT");
      // A transaction is exclusive on PGlite: every other statement waits until it ends.
      return await pg.transaction(async (tx) => {
        await tx.query("SELECT 1");
        return await fn();
      });
    },
    async listen(channel, onPayload) {
      const unsub = await pg.listen(channel, onPayload);
      return async () => await unsub();
    },
    async close() {
      if (!pg.closed) await pg.close();
      await unlock();
    },
  };
}

/** `copyIn` on PGlite (or one of its transactions): COPY reads the query's blob, `/dev/blob`. */
function copyVia(target: Pick<PGlite, "query">, staging: CopyStaging) {
  return async (table: string, columns: readonly string[], data: CopyData) => {
    await target.query(`COPY ${table} (${columns.join(", ")}) FROM '/dev/blob'`, [], {
      blob: staging.blob(data),
    });
  };
}

/** Most bytes of one COPY that {@link CopyStaging} gathers in its kept buffer. */
export const COPY_STAGING_MAX_BYTES: number = 16 * 1024 * 1024;

const encoder = new TextEncoder();

/**
 * The bytes of a COPY as PGlite reads them. PGlite takes the `blob` option's `arrayBuffer()`
 * once, inside its query lock, and serves `/dev/blob` from it until the statement ends. A
 * `Blob` of the segments would copy them twice for every COPY (into the Blob's own storage,
 * then into a fresh array buffer), garbage that piles up in the C heap between collections;
 * here they are gathered once, when PGlite asks, into one buffer kept for the next COPY (a larger
 * COPY than {@link COPY_STAGING_MAX_BYTES} gets a buffer of its own). One instance serves one
 * PGlite: its queries never overlap, so neither do the COPYs using the buffer.
 */
export class CopyStaging {
  readonly #kept = new ArrayBuffer(0, { maxByteLength: COPY_STAGING_MAX_BYTES });

  /** What PGlite's `blob` option needs of a Blob, over `data`: `arrayBuffer()`, read once. */
  blob(data: CopyData): Blob {
    // Only `arrayBuffer` is there: a PGlite that read the blob another way would fail the
    // COPY loudly rather than copy nothing.
    return { arrayBuffer: () => Promise.resolve(this.fill(data)) } as unknown as Blob;
  }

  /** `data` gathered into one buffer of exactly its length (the kept one when it fits). */
  fill(data: CopyData): ArrayBuffer {
    const parts = copyParts(data).map((p) => typeof p === "string" ? encoder.encode(p) : p);
    let size = 0;
    for (const p of parts) size += p.byteLength;
    let out: ArrayBuffer;
    if (size <= COPY_STAGING_MAX_BYTES) {
      this.#kept.resize(size);
      out = this.#kept;
    } else {
      out = new ArrayBuffer(size);
    }
    const bytes = new Uint8Array(out);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
}

/** Options of `openPglite`. */
export interface PgliteOptions {
  /**
   * PostgreSQL's `shared_buffers` in MiB. PGlite touches its whole buffer pool in the
   * process's memory at start (its WebAssembly heap is the pool plus ~16 MB), so the default
   * (16) is far below PostgreSQL's 128: the embedded process stays small, and the OS page
   * cache still holds the files. Bulk loads go through a ring of the pool, not all of it.
   */
  sharedBuffersMb?: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Runs initdb for `dir` in a child Deno process; false when that cannot be done here. */
async function initInChild(dir: string): Promise<boolean> {
  const script = new URL("./pglite_init.ts", import.meta.url);
  if (script.protocol !== "file:") return false;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script.pathname, dir],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success && await exists(`${dir}/PG_VERSION`);
  } catch {
    return false; // no permission to run a process (e.g. a sandboxed deploy)
  }
}

/** The database directory is in use by another running process. */
export class DirectoryLockedError extends Error {
  /** `dir` is held by the running process `pid`. */
  constructor(dir: string, pid: number) {
    super(
      `${dir} is in use by another Troupe process (pid ${pid}); stop it first, ` +
        "or use DATABASE_URL for a database several processes can share",
    );
    this.name = "DirectoryLockedError";
  }
}

async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const path = `${dir.replace(/\/+$/, "")}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await Deno.writeTextFile(path, String(Deno.pid), { createNew: true });
      return async () => {
        try {
          if ((await Deno.readTextFile(path)).trim() === String(Deno.pid)) await Deno.remove(path);
        } catch { /* already gone */ }
      };
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      const pid = Number((await Deno.readTextFile(path).catch(() => "")).trim());
      if (pid && pid !== Deno.pid && await alive(pid)) throw new DirectoryLockedError(dir, pid);
      await Deno.remove(path).catch(() => {}); // stale: its process is gone
    }
  }
  throw new Error(`could not lock ${dir}`);
}

/** The pid of the running process that holds `dir`, or null when none does. */
export async function directoryHolder(dir: string): Promise<number | null> {
  const path = `${dir.replace(/\/+$/, "")}.lock`;
  const pid = Number((await Deno.readTextFile(path).catch(() => "")).trim());
  return pid && await alive(pid) ? pid : null;
}

async function alive(pid: number): Promise<boolean> {
  if (Deno.build.os !== "linux") return true; // no cheap check: assume it runs
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}
