/**
 * The PGlite instance of `openPglite(dir, { thread: "worker" })`, run as a Deno Worker: PGlite
 * executes each statement synchronously (WebAssembly, its files written by synchronous calls),
 * so in a worker of its own it never holds the main thread's event loop.
 *
 * The protocol (`PgliteRequest` in, `PgliteReply` out) is private to `pglite.ts`:
 * - `open` creates the instance (`reopen`: close and open again, after initdb ran here);
 * - `query` runs a statement, `copy` a COPY FROM '/dev/blob' with the bytes as the blob, either
 *   on the instance or in transaction `tx` (an id the caller chose); `begin: true` opens that
 *   transaction first (PGlite's own: statements outside it wait until it ends), so a
 *   transaction costs no message of its own; statements sent for it meanwhile wait for it;
 * - `end` commits transaction `tx` (or rolls it back, `commit: false`) and answers when done;
 * - `listen` subscribes a listener (an id the caller chose) to a channel, `unlisten` ends it;
 *   each NOTIFY comes back as `notify` with the listener's id;
 * - `close` closes the instance.
 * Every request has an `id`; its reply carries it with the result or the error's fields
 * (`code`, `severity`, ... of a database error), so callers see what they would in-process.
 *
 * Messages carry lists (`PgliteBatch` in, `PgliteReplies` out): the requests made in one turn
 * of the caller's microtasks go in one message; the replies and notifications ready come back
 * in one when the worker waits on its caller or is about to run its next statement. A thread
 * woken for a message costs more than the message (its caches went cold while it slept): fewer
 * messages, fewer wake-ups. The worker starts each request of a list as it comes (PGlite
 * queues them in order): a statement of a transaction is answered without waiting for a
 * statement queued behind that transaction, and no answer waits behind a long statement. A notification goes in the list before the reply of the
 * statement that made it, so listeners hear it before that statement's caller resumes.
 */
import { PGlite, type Transaction } from "@electric-sql/pglite";

/** A request to the worker (each has `id`, echoed by its reply). */
export type PgliteRequest =
  | { op: "open"; id: number; dataDir?: string; settings: PgliteSettings; reopen: boolean }
  | { op: "query"; id: number; tx?: number; begin?: boolean; text: string; params?: unknown[] }
  | { op: "copy"; id: number; tx?: number; begin?: boolean; text: string; data: Uint8Array }
  | { op: "end"; id: number; tx: number; commit: boolean }
  | { op: "listen"; id: number; listener: number; channel: string }
  | { op: "unlisten"; id: number; listener: number }
  | { op: "close"; id: number };

/** The options PGlite is created with. */
export interface PgliteSettings {
  postgresqlconf: string[];
}

/** One message to the worker: requests in the order they were made. */
export interface PgliteBatch {
  requests: PgliteRequest[];
}

/** One message from the worker: replies and notifications in the order they came. */
export interface PgliteReplies {
  replies: PgliteReply[];
}

/** A reply (`id` of its request) or a notification (`op: "notify"`). */
export type PgliteReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SentError }
  | { op: "notify"; listener: number; payload: string };

/** An error as it crosses the thread: its name, message, stack and scalar fields. */
export interface SentError {
  name: string;
  message: string;
  stack?: string;
  fields: Record<string, string | number | boolean>;
}

/** The fields of `err` that cross a thread boundary (scalars: `code`, `severity`, `detail`...). */
function sendableError(err: unknown): SentError {
  const e = (typeof err === "object" && err !== null ? err : { message: String(err) }) as Record<
    string,
    unknown
  >;
  const fields: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") fields[k] = v;
  }
  return {
    name: typeof e.name === "string" ? e.name : "Error",
    message: typeof e.message === "string" ? e.message : String(err),
    ...(typeof e.stack === "string" ? { stack: e.stack } : {}),
    fields,
  };
}

/** Thrown inside PGlite's transaction to roll it back (the caller's `end` with `commit: false`). */
const ROLLBACK = Symbol("rollback");

/** The bytes moved here as an array buffer of their own (the whole of theirs when it is). */
function ownBuffer(data: Uint8Array): ArrayBuffer {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  return (whole ? data.buffer : data.slice().buffer) as ArrayBuffer;
}

/**
 * What PGlite's `blob` option reads of a Blob (`arrayBuffer()`, once: see `CopyStaging` in
 * `pglite.ts`), over `buffer`: a `Blob` would copy the bytes into its own storage, then again
 * into the array buffer PGlite asks for.
 */
function blobOver(buffer: ArrayBuffer): Blob {
  return { arrayBuffer: () => Promise.resolve(buffer) } as unknown as Blob;
}

serve(globalThis as unknown as WorkerScope);

/** A transaction PGlite holds open until `end`. */
interface OpenTransaction {
  tx: Transaction;
  end(commit: boolean): Promise<void>;
}

interface WorkerScope {
  onmessage: ((e: MessageEvent<PgliteBatch>) => void) | null;
  postMessage(msg: PgliteReplies): void;
  close(): void;
}

function serve(scope: WorkerScope): void {
  let pg: PGlite | null = null;
  /** Open transactions by id, set when the request opening one arrives (before BEGIN ran). */
  const txs = new Map<number, Promise<OpenTransaction>>();
  const listeners = new Map<number, () => Promise<void>>();

  const instance = (): PGlite => {
    if (!pg || pg.closed) throw new Error("PGlite is closed");
    return pg;
  };
  /** Where a statement runs; synchronous up to its first await, so `txs` is set in order. */
  const target = async (
    req: { tx?: number; begin?: boolean },
  ): Promise<Pick<PGlite, "query">> => {
    if (req.tx === undefined) return instance();
    if (req.begin) txs.set(req.tx, begin(instance(), req.tx));
    const open = txs.get(req.tx);
    if (!open) throw new Error("Transaction is closed");
    return (await open).tx;
  };

  const run = async (req: PgliteRequest): Promise<unknown> => {
    switch (req.op) {
      case "open": {
        const options = req.dataDir ? { dataDir: req.dataDir, ...req.settings } : req.settings;
        pg = await PGlite.create(options);
        if (req.reopen) {
          await pg.close();
          pg = await PGlite.create(options);
        }
        sendBeforeStatements(pg);
        return null;
      }
      case "query":
        return (await (await target(req)).query(req.text, req.params)).rows;
      case "copy": {
        const buffer = ownBuffer(req.data);
        try {
          await (await target(req)).query(req.text, [], { blob: blobOver(buffer) });
        } finally {
          // Freed now, not when this thread's collector next runs: the thread allocates little
          // else, so the COPYs' buffers (a chunk's ~1 MB each) piled up between its collections.
          buffer.transfer(0);
        }
        return null;
      }
      case "end": {
        const open = txs.get(req.tx);
        if (!open) throw new Error("Transaction is closed");
        await (await open).end(req.commit);
        return null;
      }
      case "listen": {
        const unsub = await instance().listen(req.channel, (payload) => {
          post({ op: "notify", listener: req.listener, payload });
        });
        listeners.set(req.listener, unsub);
        return null;
      }
      case "unlisten": {
        const unsub = listeners.get(req.listener);
        listeners.delete(req.listener);
        if (unsub && pg && !pg.closed) await unsub();
        return null;
      }
      case "close":
        listeners.clear();
        if (pg && !pg.closed) await pg.close();
        return null;
    }
  };

  /** Opens transaction `id`, held until its `end`; resolves once BEGIN ran. */
  const begin = (db: PGlite, id: number): Promise<OpenTransaction> => {
    const opening = new Promise<OpenTransaction>((opened, failed) => {
      let decide!: (commit: boolean) => void;
      const decided = new Promise<boolean>((r) => decide = r);
      let began = false;
      // `end` answers once COMMIT (or ROLLBACK) ran, with its error if it failed.
      const done: Promise<void> = db.transaction(async (tx) => {
        began = true;
        opened({
          tx,
          end(commit) {
            decide(commit);
            return done;
          },
        });
        if (!await decided) throw ROLLBACK;
      }).then(() => {}, (err) => {
        if (err !== ROLLBACK) throw err;
      }).finally(() => txs.delete(id));
      done.catch((err) => {
        if (!began) failed(err); // BEGIN itself failed
      });
    });
    opening.catch(() => {}); // its statements report the failure
    return opening;
  };

  /**
   * Replies and notifications not sent yet. They go when the thread waits on its caller (no
   * request left, or an open transaction with none of its own: every other statement waits for
   * it, and it waits for the caller's next one), and before PGlite runs a statement (however
   * long it runs, the answers ready before it are not held behind it).
   */
  let outbox: PgliteReply[] = [];
  let closing = false;
  /** Requests started and not answered: in all, and by open transaction. */
  let inFlight = 0;
  const txInFlight = new Map<number, number>();
  const waitsOnCaller = () =>
    inFlight === 0 || [...txs.keys()].some((id) => (txInFlight.get(id) ?? 0) === 0);
  const send = () => {
    if (outbox.length === 0) return;
    const replies = outbox;
    outbox = [];
    scope.postMessage({ replies });
    if (closing) scope.close();
  };
  const flush = () => {
    if (waitsOnCaller()) send();
  };
  /** PGlite runs every statement's messages through `execProtocolRaw`: send what is ready first. */
  const sendBeforeStatements = (db: PGlite) => {
    const exec = db.execProtocolRaw.bind(db);
    db.execProtocolRaw = (...args: Parameters<PGlite["execProtocolRaw"]>) => {
      send();
      return exec(...args);
    };
  };
  const post = (reply: PgliteReply) => {
    outbox.push(reply);
  };

  const answer = async (req: PgliteRequest) => {
    const tx = "tx" in req ? req.tx : undefined;
    inFlight++;
    if (tx !== undefined) txInFlight.set(tx, (txInFlight.get(tx) ?? 0) + 1);
    let reply: PgliteReply;
    try {
      reply = { id: req.id, ok: true, value: await run(req) };
    } catch (err) {
      reply = { id: req.id, ok: false, error: sendableError(err) };
    }
    inFlight--;
    if (tx !== undefined) {
      const left = txInFlight.get(tx)! - 1;
      if (left === 0) txInFlight.delete(tx);
      else txInFlight.set(tx, left);
    }
    if (req.op === "close") closing = true;
    post(reply);
    // After the microtasks this answer started (the next statement PGlite takes begins there).
    queueMicrotask(flush);
  };

  scope.onmessage = (event: MessageEvent<PgliteBatch>) => {
    // Each starts now, in order: PGlite runs them in the order they call it.
    for (const req of event.data.requests) void answer(req);
  };
}
