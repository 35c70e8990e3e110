/**
 * The SHA-256 of an upload's bytes, computed beside the upload: in a worker thread when one
 * runs, else in this thread. The upload's thread only copies each piece to the worker, or lends
 * it when it lies in a `SharedArrayBuffer` (the worker reads it in place, no copy); the hashing
 * (about 1.3 ms a MB) leaves the thread that reads every upload's body.
 *
 * One worker serves every hash open in the process: the first hash starts it, and it stops when
 * the last hash ends (a process with no upload going has no worker, and no timer), unless it
 * is held ({@link holdHashWorker}: a server holds it while it runs). Until the
 * worker says it is ready, a hash keeps copies of its pieces (up to {@link PENDING_BYTES}, then
 * it goes on in this thread); a digest asked for by then is made in this thread. A worker that
 * cannot start (a host without workers) leaves every hash to this thread; one that fails once
 * running fails the hashes it holds, and the next hash starts another.
 *
 * The worker also hosts a {@link WorkerSpawner} ({@link hashWorkerSpawner}): a server's worker
 * pools start their workers from its thread, not from the one that answers requests, without
 * a thread of its own for that.
 */
import { createHash, type Hash } from "node:crypto";
import { WorkerSpawner } from "@troupe/runtime/workers";

/** Bytes a hash keeps while the worker starts; past them it is made in this thread. */
const PENDING_BYTES = 4 << 20;
/** The pieces' buffers, which the worker hands back to be filled again (fresh memory costs). */
const PIECE_BYTES = 1 << 20;
/** Bytes sent to the worker and not yet hashed past which `update` waits. */
const BEHIND_BYTES = 64 << 20;

/** An incremental SHA-256. */
export interface StreamHash {
  /**
   * Adds `bytes`. Bytes in a `SharedArrayBuffer` may be read in place by the worker: the caller
   * leaves them unchanged until the returned promise resolves (once they are hashed). Other
   * bytes are copied (the caller may reuse its buffer at once); the promise then resolves at
   * once, or once the worker has caught up when it is far behind. Await it.
   */
  update(bytes: Uint8Array): Promise<void> | void;
  /** The hex digest of everything added; the hash is then closed. */
  digest(): Promise<string>;
  /** Closes the hash without a digest (an upload that failed). */
  drop(): void;
}

/** A new hash (see the module doc). */
export function streamHash(): StreamHash {
  return shared.open();
}

/**
 * Keeps the worker running until the returned function is called, hashes open or not: a
 * server holds it for its lifetime, so that a burst of uploads after a quiet spell does not
 * start the worker again (its start holds this thread, and until it is ready the uploads that
 * end are hashed here).
 */
export function holdHashWorker(): () => void {
  return shared.hold();
}

/**
 * The spawner of the hashing worker while it is held ({@link holdHashWorker}), for worker pools
 * (see the module doc); undefined when no worker runs. It is closed when the worker stops or
 * fails: the workers it started are then reported crashed to their pools, which start their
 * own from then on.
 */
export function hashWorkerSpawner(): WorkerSpawner | undefined {
  return shared.spawner();
}

interface Session {
  worker: Worker;
  /** Starts pool workers in this worker's thread. */
  spawner: WorkerSpawner;
  ready: boolean;
  error: Error | null;
  /** Hashes waiting for the worker to be ready. */
  waiting: Set<AdaptiveHash>;
  digests: Map<number, PromiseWithResolvers<string>>;
  /** Buffers of PIECE_BYTES the worker gave back. */
  spare: ArrayBuffer[];
  /** Bytes sent and not yet hashed, and who waits for fewer. */
  behind: number;
  caughtUp: (() => void)[];
  /** Lent pieces (in a `SharedArrayBuffer`) not yet hashed, by their number. */
  lent: Map<number, PromiseWithResolvers<void>>;
  nextLent: number;
}

/** The one worker and the hashes open in the process. */
class HashWorker {
  #session: Session | null = null;
  #unavailable = typeof Worker === "undefined";
  #nextId = 0;
  #open = 0;
  /** Holds not released ({@link holdHashWorker}). */
  #holds = 0;

  open(): StreamHash {
    if (!this.#session && !this.#unavailable) this.#session = this.#start();
    this.#open++;
    return new AdaptiveHash(this.#session, () => this.#nextId++, () => this.#release());
  }

  /** Only while held: a worker started for hashes alone stops with the last of them. */
  spawner(): WorkerSpawner | undefined {
    const session = this.#session;
    return this.#holds > 0 && session && !session.error && !session.spawner.closed
      ? session.spawner
      : undefined;
  }

  hold(): () => void {
    if (!this.#session && !this.#unavailable) this.#session = this.#start();
    this.#open++;
    this.#holds++;
    let held = true;
    return () => {
      if (held) {
        this.#holds--;
        this.#release();
      }
      held = false;
    };
  }

  #release(): void {
    if (--this.#open === 0) this.#stop();
  }

  #start(): Session | null {
    let worker: Worker;
    try {
      worker = new Worker(new URL("./hash_worker.ts", import.meta.url).href, { type: "module" });
    } catch {
      this.#unavailable = true;
      return null;
    }
    const session: Session = {
      worker,
      spawner: new WorkerSpawner((msg) => worker.postMessage(msg)),
      ready: false,
      error: null,
      waiting: new Set(),
      digests: new Map(),
      spare: [],
      behind: 0,
      caughtUp: [],
      lent: new Map(),
      nextLent: 0,
    };
    worker.onmessage = (
      e: MessageEvent<
        | { id: number; sha256: string }
        | { ready: true }
        | { done: ArrayBuffer; n: number }
        | { read: number; n: number }
      >,
    ) => {
      if (session.spawner.handle(e.data)) return;
      if ("read" in e.data) {
        session.behind -= e.data.n;
        session.lent.get(e.data.read)?.resolve();
        session.lent.delete(e.data.read);
        return;
      }
      if ("done" in e.data) {
        session.behind -= e.data.n;
        if (e.data.done.byteLength === PIECE_BYTES && session.spare.length < 64) {
          session.spare.push(e.data.done);
        }
        if (session.behind < BEHIND_BYTES) {
          for (const resume of session.caughtUp.splice(0)) resume();
        }
        return;
      }
      if ("ready" in e.data) {
        session.ready = true;
        for (const hash of session.waiting) hash.ready();
        session.waiting.clear();
        return;
      }
      session.digests.get(e.data.id)?.resolve(e.data.sha256);
      session.digests.delete(e.data.id);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      // A worker that never ran (its module cannot load here) is not started again.
      if (!session.ready) this.#unavailable = true;
      session.error = new Error(`the hashing worker failed: ${e.message}`);
      session.spawner.close(session.error.message);
      for (const hash of session.waiting) hash.inThread();
      session.waiting.clear();
      for (const waiting of session.digests.values()) waiting.reject(session.error);
      session.digests.clear();
      for (const resume of session.caughtUp.splice(0)) resume();
      // The worker reads no lent piece any more: their owners may reuse them.
      for (const lent of session.lent.values()) lent.reject(session.error);
      session.lent.clear();
      worker.terminate();
      if (this.#session === session) this.#session = null;
    };
    return session;
  }

  #stop(): void {
    this.#session?.spawner.close("the hashing worker stopped");
    this.#session?.worker.terminate();
    this.#session = null;
  }
}

/** A hash made in the worker, or in this thread (see the module doc). */
class AdaptiveHash implements StreamHash {
  readonly #session: Session | null;
  readonly #close: () => void;
  readonly #nextId: () => number;
  /** Pieces kept while the worker starts. */
  #pending: Uint8Array[] | null = [];
  #pendingBytes = 0;
  #local: Hash | null = null;
  /** Its id in the worker, once it hashes there. */
  #id: number | null = null;
  #closed = false;

  constructor(session: Session | null, nextId: () => number, close: () => void) {
    this.#session = session;
    this.#nextId = nextId;
    this.#close = close;
    if (!session || session.error) this.inThread();
    else if (session.ready) this.ready();
    else session.waiting.add(this);
  }

  /** The worker is ready: the kept pieces go there, and the rest after them. */
  ready(): void {
    if (this.#pending === null || this.#closed) return;
    this.#id = this.#nextId();
    for (const piece of this.#pending) this.#post(piece);
    this.#pending = null;
  }

  /** Made in this thread from now on, the kept pieces first. */
  inThread(): void {
    if (this.#pending === null) return;
    this.#session?.waiting.delete(this);
    this.#local = createHash("sha256");
    for (const piece of this.#pending) this.#local.update(piece);
    this.#pending = null;
  }

  update(bytes: Uint8Array): Promise<void> | void {
    if (this.#closed) throw new Error("the hash is closed");
    if (this.#local) {
      this.#local.update(bytes);
    } else if (this.#pending) {
      this.#pending.push(bytes.slice());
      this.#pendingBytes += bytes.byteLength;
      if (this.#pendingBytes > PENDING_BYTES) this.inThread();
    } else {
      const session = this.#session!;
      if (session.error) throw session.error;
      if (bytes.buffer instanceof SharedArrayBuffer) return this.#lend(bytes);
      for (let at = 0; at < bytes.byteLength; at += PIECE_BYTES) {
        const piece = bytes.subarray(at, at + PIECE_BYTES);
        // A buffer of its own, moved to the worker (a structured clone costs far more than a
        // copy), and one the worker gave back when there is one (fresh memory costs too).
        const spare = session.spare.pop();
        const own = spare
          ? new Uint8Array(spare, 0, piece.byteLength)
          : new Uint8Array(PIECE_BYTES).subarray(0, piece.byteLength);
        own.set(piece);
        this.#post(own);
      }
      if (session.behind >= BEHIND_BYTES) {
        return new Promise((resume) => session.caughtUp.push(resume));
      }
    }
  }

  async digest(): Promise<string> {
    if (this.#closed) throw new Error("the hash is closed");
    try {
      if (this.#pending) this.inThread();
      if (this.#local) return this.#local.digest("hex");
      const session = this.#session!;
      if (session.error) throw session.error;
      const waiting = Promise.withResolvers<string>();
      session.digests.set(this.#id!, waiting);
      session.worker.postMessage({ id: this.#id, end: true });
      return await waiting.promise;
    } finally {
      this.#end();
    }
  }

  drop(): void {
    if (this.#closed) return;
    const session = this.#session;
    if (this.#id !== null && session && !session.error) {
      session.digests.delete(this.#id);
      session.worker.postMessage({ id: this.#id, drop: true });
    }
    this.#end();
  }

  /** Lends `bytes` (in a `SharedArrayBuffer`) to the worker: resolves once it has read them. */
  #lend(bytes: Uint8Array): Promise<void> {
    const session = this.#session!;
    const read = session.nextLent++;
    const lent = Promise.withResolvers<void>();
    session.lent.set(read, lent);
    session.behind += bytes.byteLength;
    session.worker.postMessage({ id: this.#id, bytes, read });
    return lent.promise;
  }

  /** Moves `bytes` (a view of a buffer of their own) to the worker. */
  #post(bytes: Uint8Array): void {
    const session = this.#session!;
    session.behind += bytes.byteLength;
    session.worker.postMessage({ id: this.#id, bytes }, [bytes.buffer as ArrayBuffer]);
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#session?.waiting.delete(this);
    this.#pending = null;
    this.#close();
  }
}

const shared = new HashWorker();
