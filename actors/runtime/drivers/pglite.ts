/**
 * Embedded PostgreSQL (PGlite, WASM) adapter: one process, a directory on disk or memory;
 * PGlite runs in the calling thread or in a worker of its own (`PgliteOptions.thread`).
 */
import type { PGlite } from "@electric-sql/pglite";
import { type CopyData, copyParts, type SqlDatabase, type SqlExecutor } from "../ports.ts";
import type {
  PgliteBatch,
  PgliteReplies,
  PgliteReply,
  PgliteRequest,
  PgliteSettings,
  SentError,
} from "./pglite_thread.ts";
import { StepBudget } from "../step_budget.ts";

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
  const settings: PgliteSettings = {
    postgresqlconf: [`shared_buffers = ${options.sharedBuffersMb ?? 8}MB`],
  };
  try {
    const fresh = dataDir !== undefined && !(await exists(`${dataDir}/PG_VERSION`));
    // The first open runs initdb, whose WASM heap (~640 MB) stays mapped as long as the
    // instance lives: a child process does it when it can; otherwise the instance is closed
    // and the directory opened again, so that the first instance is left to the collector.
    const reopen = fresh && !(await initInChild(dataDir!));
    return options.thread === "worker"
      ? await inWorker(dataDir, settings, reopen, unlock)
      : await inProcess(dataDir, settings, reopen, unlock);
  } catch (err) {
    await unlock();
    throw err;
  }
}

/** PGlite in this thread: each statement holds the event loop while it runs. */
async function inProcess(
  dataDir: string | undefined,
  settings: PgliteSettings,
  reopen: boolean,
  unlock: () => Promise<void>,
): Promise<SqlDatabase> {
  // Loaded here: with PGlite in a worker, this thread never evaluates its module.
  const { PGlite } = await import("@electric-sql/pglite");
  const options = dataDir ? { dataDir, ...settings } : settings;
  let pg = await PGlite.create(options);
  if (reopen) {
    await pg.close();
    pg = await PGlite.create(options);
  }
  // PGlite runs one query at a time; transactions are exclusive by construction.
  const staging = new CopyStaging();
  // Statements queued behind a transaction run one after the other as it ends, each in a
  // microtask of the one before: without a turn of the event loop now and then, a queue of
  // them would hold it for all their time together.
  const loop = new StepBudget(0, { holdMs: LOOP_HOLD_MS });
  // Outside a transaction, the slices of one COPY go in one of their own: all or nothing.
  const copyIn = copyVia(pg, staging, loop, (fn) => pg.transaction(fn));
  const exec: SqlExecutor = {
    async query<T>(text: string, params?: readonly unknown[]) {
      await loop.pause();
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
            await loop.pause();
            const res = await tx.query<R>(text, params ? [...params] : undefined);
            return res.rows;
          },
          copyIn: copyVia(tx, staging, loop),
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
      // A function of its own: PGlite keeps a channel's callbacks in a set, where the same
      // `onPayload` listened twice would be one listener, stopped by either.
      const unsub = await pg.listen(channel, (payload) => onPayload(payload));
      return async () => await unsub();
    },
    async close() {
      if (!pg.closed) await pg.close();
      await unlock();
    },
  };
}

/**
 * PGlite in a Deno Worker of its own (`pglite_thread.ts`): statements run there, and this
 * thread's event loop stays free while they do. The calls made in one microtask turn go in one
 * message, and the answers ready together come back in one; rows and
 * errors (with their SQLSTATE `code` and `severity`) come back as PGlite gave them
 * (`@electric-sql/pglite/worker` drops those fields, and elects a leader among browser tabs).
 */
async function inWorker(
  dataDir: string | undefined,
  settings: PgliteSettings,
  reopen: boolean,
  unlock: () => Promise<void>,
): Promise<SqlDatabase> {
  const thread = new PgliteThread();
  try {
    await thread.call({ op: "open", ...(dataDir ? { dataDir } : {}), settings, reopen });
  } catch (err) {
    thread.stop(new Error("PGlite is closed"));
    throw err;
  }
  /** Statements on the instance, or in transaction `tx` (`first()`: this one opens it). */
  const executor = (tx?: number, first?: () => boolean): Required<SqlExecutor> => {
    const where = () => tx === undefined ? {} : first!() ? { tx, begin: true } : { tx };
    return {
      async query<T>(text: string, params?: readonly unknown[]) {
        return await thread.call<T[]>({
          op: "query",
          ...where(),
          text,
          ...(params ? { params: [...params] } : {}),
        });
      },
      async copyIn(table: string, columns: readonly string[], data: CopyData) {
        // One buffer of this call's own, moved (not copied) to the worker.
        const bytes = ownedBytes(data);
        await thread.call({
          op: "copy",
          ...where(),
          text: `COPY ${table} (${columns.join(", ")}) FROM '/dev/blob'`,
          data: bytes,
        }, [bytes.buffer as ArrayBuffer]);
      },
    };
  };
  // BEGIN goes with the transaction's first statement: no message of its own.
  const transaction = async <T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> => {
    const tx = thread.transactionId();
    let begun = false;
    const first = () => !begun && (begun = true);
    let result: T;
    try {
      result = await fn(executor(tx, first));
    } catch (err) {
      if (begun) await thread.call({ op: "end", tx, commit: false }).catch(() => {});
      throw err;
    }
    if (begun) await thread.call({ op: "end", tx, commit: true });
    return result;
  };
  const outside = executor();
  let closing: Promise<void> | null = null;
  return {
    dialect: "pglite",
    shared: false,
    autovacuum: false,
    query: outside.query,
    copyIn: outside.copyIn,
    transaction,
    async hold<T>(fn: () => Promise<T>): Promise<T> {
      await outside.query("CHECKPOINT");
      // A transaction is exclusive on PGlite: every other statement waits until it ends.
      return await transaction(async (tx) => {
        await tx.query("SELECT 1");
        return await fn();
      });
    },
    async listen(channel, onPayload) {
      const listener = thread.listener(onPayload);
      try {
        await thread.call({ op: "listen", listener, channel });
      } catch (err) {
        thread.unlisten(listener);
        throw err;
      }
      return async () => {
        thread.unlisten(listener);
        await thread.call({ op: "unlisten", listener }).catch(() => {});
      };
    },
    async close() {
      closing ??= (async () => {
        try {
          await thread.call({ op: "close" });
        } finally {
          thread.stop(new Error("PGlite is closed"));
          await unlock();
        }
      })();
      await closing;
    },
  };
}

/**
 * Messages between this process's threads and their PGlite workers since it started: `sent`
 * to the workers, `received` from them (replies and notifications), and the `statements`
 * those carried (for benchmarks and tests: what a workload costs in round trips).
 */
export function pgliteWorkerTraffic(): { sent: number; received: number; statements: number } {
  return { ...traffic };
}
const traffic = { sent: 0, received: 0, statements: 0 };

/** A request without its id (the thread numbers them). */
type Call = PgliteRequest extends infer R ? R extends unknown ? Omit<R, "id"> : never : never;

/** The worker running PGlite, and the calls waiting for its replies. */
class PgliteThread {
  #worker = new Worker(new URL("./pglite_thread.ts", import.meta.url).href, { type: "module" });
  #next = 1;
  #pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  #listeners = new Map<number, (payload: string) => void>();
  #nextListener = 1;
  #nextTransaction = 1;
  #stopped: Error | null = null;
  /** Requests made in this microtask turn, sent together at its end (see `pglite_thread.ts`). */
  #outbox: PgliteRequest[] = [];
  #transfer: Transferable[] = [];

  constructor() {
    this.#worker.onmessage = (e: MessageEvent<PgliteReplies>) => {
      traffic.received++;
      for (const reply of e.data.replies) this.#receive(reply);
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.stop(new Error(`PGlite is closed: its worker failed: ${e.message}`));
    };
  }

  #receive(reply: PgliteReply): void {
    if ("op" in reply) {
      this.#listeners.get(reply.listener)?.(reply.payload);
      return;
    }
    const waiting = this.#pending.get(reply.id);
    this.#pending.delete(reply.id);
    if (reply.ok) waiting?.resolve(reply.value);
    else waiting?.reject(receivedError(reply.error));
  }

  /** Sends `req` (moving `transfer`) and resolves to the worker's answer. */
  call<T = unknown>(req: Call, transfer: Transferable[] = []): Promise<T> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (req.op === "query" || req.op === "copy") traffic.statements++;
      if (this.#outbox.length === 0) queueMicrotask(() => this.#flush());
      this.#outbox.push({ ...req, id } as PgliteRequest);
      this.#transfer.push(...transfer);
    });
  }

  #flush(): void {
    const requests = this.#outbox;
    const transfer = this.#transfer;
    this.#outbox = [];
    this.#transfer = [];
    if (this.#stopped) return; // `stop` rejected their callers
    traffic.sent++;
    this.#worker.postMessage({ requests } satisfies PgliteBatch, transfer);
  }

  /** An id for a new transaction. */
  transactionId(): number {
    return this.#nextTransaction++;
  }

  /** An id for `onPayload`, which receives the notifications sent to it. */
  listener(onPayload: (payload: string) => void): number {
    const id = this.#nextListener++;
    this.#listeners.set(id, onPayload);
    return id;
  }

  unlisten(id: number): void {
    this.#listeners.delete(id);
  }

  /** Ends the worker; what still waits, and every later call, fails with `reason`. */
  stop(reason: Error): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    this.#worker.terminate();
    for (const waiting of this.#pending.values()) waiting.reject(reason);
    this.#pending.clear();
    this.#listeners.clear();
  }
}

/** The worker's error as an Error here, with the same fields (`code`, `severity`, ...). */
function receivedError(sent: SentError): Error {
  const err = Object.assign(new Error(sent.message), sent.fields);
  err.name = sent.name;
  if (sent.stack) err.stack = sent.stack;
  return err;
}

/** `data` as one UTF-8 buffer that no one else holds (it is moved to the worker). */
function ownedBytes(data: CopyData): Uint8Array {
  return new Uint8Array(gathered(data, (size) => new ArrayBuffer(size)));
}

/** `data`'s parts (strings as UTF-8) written one after another into `alloc(their size)`. */
function gathered(data: CopyData, alloc: (size: number) => ArrayBuffer): ArrayBuffer {
  const parts = copyParts(data).map((p) => typeof p === "string" ? encoder.encode(p) : p);
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = alloc(size);
  const bytes = new Uint8Array(out);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * `copyIn` on PGlite (or one of its transactions): COPY reads the query's blob, `/dev/blob`.
 * With `loop` (PGlite in this thread), a COPY of more than {@link COPY_SLICE_BYTES} is cut at
 * row ends into COPYs of up to that many bytes, with a turn of the event loop between them when
 * it has been held {@link LOOP_HOLD_MS}: PGlite in this thread holds the loop while a statement
 * runs (a COPY of 1 MiB: most of a second), and between the slices it answers what needs no
 * database. The slices commit together: in the caller's transaction, or (`inTransaction`)
 * in one of their own.
 */
function copyVia(
  target: Pick<PGlite, "query">,
  staging: CopyStaging,
  loop?: StepBudget,
  inTransaction?: (fn: (tx: Pick<PGlite, "query">) => Promise<void>) => Promise<void>,
) {
  const slice = loop ? COPY_SLICE_BYTES : undefined;
  return async (table: string, columns: readonly string[], data: CopyData) => {
    await loop?.pause();
    const sql = `COPY ${table} (${columns.join(", ")}) FROM '/dev/blob'`;
    const size = copyParts(data).reduce(
      (n, p) => n + (typeof p === "string" ? p.length * 3 : p.byteLength),
      0,
    );
    if (!slice || size <= slice) {
      await target.query(sql, [], { blob: staging.blob(data) });
      return;
    }
    // Its own buffer: between the slices other COPYs may use the staging buffer.
    const bytes = ownedBytes(data);
    const run = async (on: Pick<PGlite, "query">) => {
      for (const part of rowSlices(bytes, slice)) {
        await loop?.pause();
        await on.query(sql, [], { blob: staging.blob(part) });
      }
    };
    await (inTransaction ? inTransaction(run) : run(target));
  };
}

/**
 * Bytes of one COPY statement on PGlite in this thread (see {@link copyVia}). Each COPY
 * statement costs PGlite ~6 ms of its own: 64 KiB slices made a 1 MiB COPY twice as long,
 * 256 KiB ones as long as one COPY.
 */
export const COPY_SLICE_BYTES: number = 256 * 1024;

/**
 * PGlite in this thread gives the event loop a turn before a statement once statements have
 * held it this long (ms) since its last turn.
 */
export const LOOP_HOLD_MS = 10;

/**
 * `bytes` (COPY text: rows end with a newline, which no field holds unescaped) cut after a
 * newline into parts of at most `max` bytes; a row longer than that is a part of its own.
 */
export function rowSlices(bytes: Uint8Array, max: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at <= max) {
      out.push(bytes.subarray(at));
      break;
    }
    let cut = bytes.lastIndexOf(0x0a, at + max - 1);
    if (cut < at) cut = bytes.indexOf(0x0a, at + max);
    const end = cut < 0 ? bytes.length : cut + 1;
    out.push(bytes.subarray(at, end));
    at = end;
  }
  return out;
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
    return gathered(data, (size) => {
      if (size > COPY_STAGING_MAX_BYTES) return new ArrayBuffer(size);
      this.#kept.resize(size);
      return this.#kept;
    });
  }
}

/** Options of `openPglite`. */
export interface PgliteOptions {
  /**
   * PostgreSQL's `shared_buffers` in MiB. PGlite touches its whole buffer pool in the
   * process's memory at start (its WebAssembly heap is the pool plus ~16 MB), so the default
   * (8) is far below PostgreSQL's 128: the embedded process stays small, and the OS page
   * cache still holds the files. Bulk loads and scans of large tables go through a ring of
   * the pool, not all of it.
   */
  sharedBuffersMb?: number;
  /**
   * Where PGlite runs. `main`: in the calling thread, where each statement holds the event
   * loop while it runs (a COPY of 1 MiB: most of a second). `worker`: in a Deno Worker of its
   * own, so that the thread stays free to answer (e.g. HTTP requests) while statements run;
   * the calls made together then go to the worker in one message, and a call awaited before the
   * next costs a message each way.
   * @default "main"
   */
  thread?: "main" | "worker";
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
