/**
 * A small pool of workers for CPU-bound steps (PDF text extraction, chunk parsing), so a
 * process uses more than one core. Workers start on first use; each runs one task at a time;
 * tasks queue in order. A worker that dies rejects its tasks and is replaced.
 *
 * With `depth` > 1 a worker is given up to that many tasks at once (it still runs them one
 * after the other): the next is waiting in the worker when one ends, instead of after a trip
 * through this thread, which on a busy machine may not be scheduled at once. A worker that
 * dies then rejects every task it was given (their transferred buffers went with it).
 *
 * With `idleMs`, a worker that has had no task for that long is stopped (its heap given back);
 * the next task starts a new one.
 *
 * Workers are Web Workers, or, with `youngGenerationMb` or `heapMb`, `node:worker_threads`
 * workers with those `resourceLimits` (V8 flags are process-wide; these are per worker). Either
 * way the worker module is the same ({@link serveWorker}).
 *
 * Untrusted input (a hostile PDF, a spreadsheet built to explode) is worked on under limits:
 * `heapMb` bounds a worker's heap and `taskTimeoutMs` a task's time. A task over either fails
 * with {@link WorkerLimitError}, its worker is stopped and replaced, and this thread is
 * unharmed. Deno 2 stops a worker at its heap limit without any event (its thread sleeps and
 * answers nothing): `stallMs` sees that from the thread's CPU time, else the time limit ends it.
 * The heap limit bounds JavaScript objects, not the memory behind ArrayBuffers: what a task
 * may make of its input in bytes (a PDF's streams) is bounded by checking the input first.
 *
 * With `spawner` ({@link WorkerSpawner}), workers are started by another thread: `new Worker`
 * holds the thread that calls it until the new worker's isolate is made (50–150 ms for a
 * `node:worker_threads` worker on a loaded 2-core host), which on the thread that answers
 * requests is a request's wait. The spawner's thread makes the worker and hands this thread a
 * `MessagePort` to it; tasks and answers go over that port, not through the spawner.
 *
 * The worker module answers `{ id, method, args }` messages with `{ id, ok: true, value }` or
 * `{ id, ok: false, error: { name, message, code? } }` (see {@link serveWorker}).
 */
import type { Worker as NodeWorkerType } from "node:worker_threads";

/**
 * `node:worker_threads`, loaded on the first pool that needs heap limits: a process that never
 * asks for them (an edge instance) never loads it.
 */
let NodeWorker: typeof NodeWorkerType | undefined;
let loadingNodeWorker: Promise<unknown> | undefined;
function loadNodeWorker(): Promise<unknown> {
  return loadingNodeWorker ??= import("node:worker_threads").then((m) => NodeWorker = m.Worker);
}

/** An error as a worker reports it, rebuilt in the caller's thread. */
export interface WorkerError {
  /** The error's class name. */
  name: string;
  /** Its message. */
  message: string;
  /** Its code, when it has one. */
  code?: string;
}

interface Task {
  id: number;
  method: string;
  args: unknown[];
  transfer: Transferable[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** What the pool needs of a worker, of either kind. */
interface PoolWorker {
  postMessage(msg: unknown, transfer: Transferable[]): void;
  terminate(): void;
  /** A `node:worker_threads` worker's id (its OS thread is named `worker-<id>`). */
  threadId?: number;
}

interface Slot {
  worker: PoolWorker;
  /** Given to the worker, oldest first. */
  tasks: Task[];
  idle?: ReturnType<typeof setTimeout>;
  /** Ends the oldest task when it runs over `taskTimeoutMs`. */
  deadline?: ReturnType<typeof setTimeout>;
  /** The worker's OS thread, its CPU time when last looked at, and since when it has not moved. */
  cpu?: { tid: string; ticks: number; since: number };
}

/** Options of a `WorkerPool`. */
export interface WorkerPoolOptions {
  /** Rebuilds a worker's error in the caller's terms (default {@link workerError}). */
  toError?: ErrorFactory;
  /**
   * The workers' young-generation size in MB (default: V8's, up to ~64 MB). A worker whose
   * tasks keep little alive runs as fast in a few MB, and its heap stays that small.
   */
  youngGenerationMb?: number;
  /**
   * The workers' heap (old generation) limit in MB. A worker that reaches it is stopped and
   * its task fails with {@link WorkerLimitError}. @default V8's (no limit of its own)
   */
  heapMb?: number;
  /**
   * A task that runs longer than this in its worker fails with {@link WorkerLimitError}; the
   * worker is stopped (and replaced). Counted from when the worker starts the task. @default none
   */
  taskTimeoutMs?: number;
  /**
   * With `heapMb`: a worker given a task whose thread has used no CPU for this long is taken
   * to have stopped at its heap limit (Deno stops it there asleep, with no event), and its task
   * fails with {@link WorkerLimitError} then instead of at `taskTimeoutMs`. Only for tasks that
   * never wait (pure computation); read from Linux's `/proc`, elsewhere it does nothing.
   * @default off
   */
  stallMs?: number;
  /** Stop a worker after this long without a task. @default never */
  idleMs?: number;
  /** Tasks a worker is given at once (see the module doc). @default 1 */
  depth?: number;
  /**
   * Starts the workers in another thread (see the module doc): a spawner, or a function that
   * gives the one to use for each start (none, or a closed one: this thread). Its workers are
   * always `node:worker_threads` workers. @default this thread
   */
  spawner?: SpawnerOption;
}

/** A {@link WorkerSpawner}, or a function giving the one to use now (undefined: none). */
export type SpawnerOption = WorkerSpawner | (() => WorkerSpawner | undefined);

/** A worker died (or never started: a module that fails to load, no worker support). */
export class WorkerCrashedError extends Error {
  /** Why the worker died. */
  constructor(message: string) {
    super(`worker crashed: ${message}`);
    this.name = "WorkerCrashedError";
  }
}

/**
 * A task given to a worker that was stopped for another task's sake (over a limit): nothing
 * was wrong with it, and running it again may well succeed.
 */
export class WorkerStoppedError extends Error {
  /** Why the worker was stopped. */
  constructor(message: string) {
    super(message);
    this.name = "WorkerStoppedError";
  }
}

/**
 * A `stallMs` for tasks that only compute (parsing a file): such a task never sleeps this long,
 * so a worker that does has stopped at its heap limit.
 */
export const COMPUTE_STALL_MS = 2000;

/**
 * A task went over its worker's limits (`heapMb`, `taskTimeoutMs`): the input it was given is
 * too much to work on. Retrying gives the same; callers report it as the input's fault.
 */
export class WorkerLimitError extends Error {
  /** Which limit the task went over (`memory` or `time`), and the message. */
  constructor(readonly limit: "memory" | "time", message: string) {
    super(message);
    this.name = "WorkerLimitError";
  }
}

/** Rebuilds a worker's error in the caller's terms (e.g. a typed error with its code). */
export type ErrorFactory = (e: WorkerError) => Error;

/** A pool of worker threads running one module's tasks, with per-task memory and time limits. */
export class WorkerPool {
  #slots: Slot[] = [];
  #queue: Task[] = [];
  #next = 1;
  #closed = false;

  readonly #toError: ErrorFactory;
  readonly #youngMb: number | undefined;
  readonly #heapMb: number | undefined;
  readonly #taskTimeoutMs: number | undefined;
  readonly #stallMs: number | undefined;
  #stallTimer: ReturnType<typeof setInterval> | undefined;
  readonly #idleMs: number | undefined;
  readonly #depth: number;
  readonly #spawner: SpawnerOption | undefined;
  /** Workers started so far, by this thread (`direct`) or by the spawner. */
  readonly started = { direct: 0, spawned: 0 };

  /** A pool of up to `size` workers running the module at `url`; workers start as tasks come. */
  constructor(
    private readonly url: URL,
    readonly size: number,
    {
      toError = workerError,
      youngGenerationMb,
      heapMb,
      taskTimeoutMs,
      stallMs,
      idleMs,
      depth = 1,
      spawner,
    }: WorkerPoolOptions = {},
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError("a pool needs 1+ workers");
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError("depth must be 1 or more");
    this.#toError = toError;
    this.#youngMb = youngGenerationMb;
    this.#heapMb = heapMb;
    this.#taskTimeoutMs = taskTimeoutMs;
    this.#stallMs = heapMb === undefined ? undefined : stallMs;
    this.#idleMs = idleMs;
    this.#depth = depth;
    this.#spawner = spawner;
  }

  get #usesNodeWorkers(): boolean {
    return this.#youngMb !== undefined || this.#heapMb !== undefined;
  }

  /**
   * Starts workers until `n` run (at most `size`), without tasks: a pool warmed before a server
   * listens runs its first tasks without a start on the request path. A worker warmed so stops
   * after `idleMs` without a task like any other.
   */
  warm(n = this.size): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (NodeWorker === undefined && this.#usesNodeWorkers && !this.#spawning) {
      return loadNodeWorker().then(() => this.warm(n));
    }
    while (this.#slots.length < Math.min(n, this.size)) {
      const slot = this.#spawn();
      this.#idleTimer(slot);
    }
    return Promise.resolve();
  }

  /** The spawner that starts workers now, if any. */
  get #spawnerNow(): WorkerSpawner | undefined {
    const s = typeof this.#spawner === "function" ? this.#spawner() : this.#spawner;
    return s && !s.closed ? s : undefined;
  }

  /** Whether workers are started by a spawner. */
  get #spawning(): boolean {
    return this.#spawnerNow !== undefined;
  }

  /** Workers running now (started and not stopped). */
  get running(): number {
    return this.#slots.length;
  }

  /** Runs `method(...args)` in a worker; `transfer` lists buffers to move, not copy. */
  run<T>(method: string, args: unknown[], transfer: Transferable[] = []): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("the worker pool is closed"));
    if (NodeWorker === undefined && this.#usesNodeWorkers && !this.#spawning) {
      return loadNodeWorker().then(() => this.run<T>(method, args, transfer));
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        id: this.#next++,
        method,
        args,
        transfer,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      this.#pump();
    });
  }

  /** Stops every worker; queued and running tasks are rejected. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#stallTimer);
    const err = new Error("the worker pool is closed");
    for (const t of this.#queue.splice(0)) t.reject(err);
    for (const s of this.#slots) {
      clearTimeout(s.idle);
      clearTimeout(s.deadline);
      for (const t of s.tasks.splice(0)) t.reject(err);
      s.worker.terminate();
    }
    this.#slots = [];
  }

  #pump(): void {
    while (this.#queue.length) {
      // An idle worker, else a new one, else the least busy one with room.
      let slot: Slot | undefined;
      for (const s of this.#slots) {
        if (s.tasks.length < this.#depth && (!slot || s.tasks.length < slot.tasks.length)) {
          slot = s;
        }
      }
      if ((!slot || slot.tasks.length > 0) && this.#slots.length < this.size) {
        if (NodeWorker === undefined && this.#usesNodeWorkers && !this.#spawning) {
          // The spawner closed with tasks waiting: this thread starts the workers from now on,
          // once it has `node:worker_threads`.
          loadNodeWorker().then(() => this.#closed || this.#pump());
          if (!slot) return;
        } else slot = this.#spawn();
      }
      if (!slot) return;
      const task = this.#queue.shift()!;
      clearTimeout(slot.idle);
      slot.tasks.push(task);
      slot.worker.postMessage({ id: task.id, method: task.method, args: task.args }, task.transfer);
      if (slot.tasks.length === 1) this.#startDeadline(slot);
    }
    if (this.#stallMs !== undefined && !this.#stallTimer && this.#slots.length) {
      this.#stallTimer = setInterval(() => this.#checkStalls(), Math.max(50, this.#stallMs / 4));
      Deno.unrefTimer(this.#stallTimer);
    }
  }

  /** Fails the tasks of workers whose threads have stopped (see `stallMs`). */
  #checkStalls(): void {
    const now = performance.now();
    for (const slot of [...this.#slots]) {
      const { threadId } = slot.worker;
      const tid = slot.cpu?.tid ?? (threadId === undefined ? null : osThread(threadId));
      const thread = slot.tasks.length && tid ? threadCpu(tid) : null;
      if (!tid || thread === null) {
        delete slot.cpu;
        continue;
      }
      // Asleep and using no CPU; a thread waiting for a core (busy machine) is not asleep.
      const { ticks, asleep } = thread;
      if (!slot.cpu || slot.cpu.ticks !== ticks || !asleep) slot.cpu = { tid, ticks, since: now };
      else if (now - slot.cpu.since >= this.#stallMs!) {
        this.#fail(
          slot,
          new WorkerLimitError("memory", "the worker stopped at its heap limit"),
        );
      }
    }
    if (this.#slots.length === 0) {
      clearInterval(this.#stallTimer);
      this.#stallTimer = undefined;
    }
  }

  /** The worker starts its oldest task now (it runs them in order): that task's time starts. */
  #startDeadline(slot: Slot): void {
    clearTimeout(slot.deadline);
    const ms = this.#taskTimeoutMs;
    if (ms === undefined || slot.tasks.length === 0) return;
    const task = slot.tasks[0]!;
    slot.deadline = setTimeout(() => {
      if (slot.tasks[0] !== task) return;
      this.#fail(slot, new WorkerLimitError("time", `the task ran over its ${ms} ms limit`));
    }, ms);
  }

  /**
   * Stops `slot`'s worker: its oldest task fails with `error`; the others it was given fail
   * with {@link WorkerStoppedError} (their transferred buffers went with it). A new worker takes
   * the queue.
   */
  #fail(slot: Slot, error: Error): void {
    if (!this.#slots.includes(slot)) return; // closed, or already reported
    const tasks = slot.tasks.splice(0);
    clearTimeout(slot.idle);
    clearTimeout(slot.deadline);
    slot.worker.terminate();
    this.#slots = this.#slots.filter((s) => s !== slot);
    tasks.forEach((task, i) =>
      task.reject(
        i === 0 ? error : new WorkerStoppedError(`its worker was stopped: ${error.message}`),
      )
    );
    if (!this.#closed) this.#pump();
  }

  #spawn(): Slot {
    const onMessage = (data: unknown) => {
      const msg = data as { id: number; ok: boolean; value?: unknown; error?: WorkerError };
      const at = slot.tasks.findIndex((t) => t.id === msg.id);
      if (at < 0) return;
      const [task] = slot.tasks.splice(at, 1);
      if (at === 0) this.#startDeadline(slot);
      if (msg.ok) task!.resolve(msg.value);
      else task!.reject(this.#toError(msg.error ?? { name: "Error", message: "worker failed" }));
      this.#pump();
      this.#idleTimer(slot);
    };
    const onCrash = (message: string, outOfMemory = false) => {
      if (!this.#slots.includes(slot)) return; // closed, or already reported
      if (outOfMemory) {
        this.#fail(slot, new WorkerLimitError("memory", `the task ran out of memory: ${message}`));
        return;
      }
      const tasks = slot.tasks.splice(0);
      clearTimeout(slot.idle);
      clearTimeout(slot.deadline);
      slot.worker.terminate();
      this.#slots = this.#slots.filter((s) => s !== slot);
      for (const task of tasks) task.reject(new WorkerCrashedError(message));
      if (!this.#closed) this.#pump();
    };
    // Both handlers run on events, after `slot` is set.
    const slot: Slot = { worker: this.#start(onMessage, onCrash), tasks: [] };
    this.#slots.push(slot);
    return slot;
  }

  /** With `idleMs`: stops `slot`'s worker when it has had no task that long. */
  #idleTimer(slot: Slot): void {
    if (slot.tasks.length > 0 || this.#idleMs === undefined) return;
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      if (slot.tasks.length > 0 || !this.#slots.includes(slot)) return;
      this.#slots = this.#slots.filter((s) => s !== slot); // before: its exit is no crash
      slot.worker.terminate();
    }, this.#idleMs);
    Deno.unrefTimer(slot.idle);
  }

  /** A worker of the pool's kind, its messages and deaths reported to the handlers. */
  #start(
    onMessage: (data: unknown) => void,
    onCrash: (message: string, outOfMemory?: boolean) => void,
  ): PoolWorker {
    const spawner = this.#spawnerNow;
    if (spawner) {
      this.started.spawned++;
      return spawner.spawn(this.url, this.#limits(), onMessage, onCrash);
    }
    this.started.direct++;
    if (!this.#usesNodeWorkers) {
      const worker = new Worker(this.url.href, { type: "module" });
      worker.onmessage = (e: MessageEvent) => onMessage(e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        onCrash(e.message);
      };
      return worker;
    }
    // `run` loads it before the first task reaches a worker.
    if (NodeWorker === undefined) throw new Error("node:worker_threads is not loaded yet");
    const worker = new NodeWorker(this.url, { resourceLimits: this.#limits() });
    worker.on("message", onMessage);
    // Node reports a worker at its heap limit so (Deno, so far, does not: see the module doc).
    worker.on(
      "error",
      (err: Error & { code?: string }) =>
        onCrash(err?.message ?? String(err), err?.code === "ERR_WORKER_OUT_OF_MEMORY"),
    );
    worker.on("exit", (code: number) => onCrash(`exited with code ${code}`));
    return {
      threadId: worker.threadId,
      postMessage: (msg, transfer) =>
        worker.postMessage(msg, transfer as Parameters<NodeWorkerType["postMessage"]>[1]),
      terminate: () => void worker.terminate(),
    };
  }

  #limits(): ResourceLimits {
    return {
      ...(this.#youngMb === undefined ? {} : { maxYoungGenerationSizeMb: this.#youngMb }),
      ...(this.#heapMb === undefined ? {} : { maxOldGenerationSizeMb: this.#heapMb }),
    };
  }
}

/** A `node:worker_threads` worker's `resourceLimits`, as the pool sets them. */
interface ResourceLimits {
  maxYoungGenerationSizeMb?: number;
  maxOldGenerationSizeMb?: number;
}

/** What the spawner's thread is sent: start worker `id`, or stop it. */
interface SpawnRequest {
  id: number;
  url?: string;
  limits?: ResourceLimits;
  terminate?: true;
}

/** What the spawner's thread answers about worker `id`. */
interface SpawnReport {
  id: number;
  /** The worker runs: its port, and its thread's id. */
  port?: MessagePort;
  threadId?: number;
  /** It failed (an uncaught error), with the error's code. */
  error?: string;
  code?: string;
  /** It ended, with this exit code. */
  exit?: number;
}

/** Where a spawned worker's module finds the port to the pool (set by `spawned_worker.ts`). */
const POOL_PORT = Symbol.for("troupe.workerPoolPort");

/**
 * Starts pool workers in another thread (its host: a worker of its own, {@link WorkerSpawner.start},
 * or any worker that calls {@link serveSpawner}), so that the thread of the pools never waits
 * for a worker's isolate to be made. Each worker is a `node:worker_threads` worker (with the
 * pool's resource limits) whose messages go over a `MessagePort` straight to the pool; its
 * errors and exit come through the host. The host must outlive the workers it started: when
 * it stops ({@link close}), they are reported crashed to their pools.
 *
 * Deno delivers a nested worker's start in steps of about 500 ms (seen with Deno 2.9.6): a
 * worker started so answers its first task ~0.5 s later than one started by this thread.
 */
export class WorkerSpawner {
  readonly #post: (msg: { troupeSpawn: SpawnRequest }) => void;
  readonly #stop: (() => void) | null;
  readonly #children = new Map<number, {
    worker: SpawnedWorker;
    onCrash: (message: string, outOfMemory?: boolean) => void;
  }>();
  #next = 1;
  #closed = false;

  /**
   * A spawner whose host gets requests through `post`; the host's answers go to
   * {@link handle}. `stop` stops the host (on {@link close}), when this spawner owns it.
   */
  constructor(
    post: (msg: { troupeSpawn: SpawnRequest }) => void,
    stop: (() => void) | null = null,
  ) {
    this.#post = post;
    this.#stop = stop;
  }

  /**
   * A spawner in a worker of its own (`spawner_worker.ts`); throws where workers cannot run.
   * Its start holds this thread like any worker's: start it before serving requests.
   */
  static start(): WorkerSpawner {
    const host = new Worker(new URL("./spawner_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const spawner = new WorkerSpawner((msg) => host.postMessage(msg), () => host.terminate());
    host.onmessage = (e: MessageEvent) => spawner.handle(e.data);
    host.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      spawner.close(`the spawner failed: ${e.message}`);
    };
    return spawner;
  }

  /** Whether it is closed (pools then start their workers themselves). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Workers started and not yet ended. */
  get running(): number {
    return this.#children.size;
  }

  /** Takes a message of the host; whether it was the spawner's (`{troupeSpawned}`). */
  handle(data: unknown): boolean {
    const report = (data as { troupeSpawned?: SpawnReport } | null)?.troupeSpawned;
    if (!report) return false;
    const child = this.#children.get(report.id);
    if (!child) {
      report.port?.close();
      return true;
    }
    if (report.port) child.worker.connect(report.port, report.threadId);
    else {
      this.#children.delete(report.id);
      child.worker.ended();
      child.onCrash(
        report.error ?? `exited with code ${report.exit}`,
        report.code === "ERR_WORKER_OUT_OF_MEMORY",
      );
    }
    return true;
  }

  /** Starts a worker of `url` in the host; its messages go to `onMessage`. */
  spawn(
    url: URL,
    limits: ResourceLimits,
    onMessage: (data: unknown) => void,
    onCrash: (message: string, outOfMemory?: boolean) => void,
  ): PoolWorker {
    const id = this.#next++;
    const worker = new SpawnedWorker(onMessage, () => {
      if (!this.#children.delete(id)) return;
      this.#post({ troupeSpawn: { id, terminate: true } });
    });
    this.#children.set(id, { worker, onCrash });
    this.#post({ troupeSpawn: { id, url: url.href, limits } });
    return worker;
  }

  /** Stops the host (when owned); the workers it started are reported crashed with `why`. */
  close(why = "the spawner was closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    const children = [...this.#children.values()];
    this.#children.clear();
    for (const { worker } of children) worker.ended();
    this.#stop?.();
    for (const { onCrash } of children) onCrash(why);
  }
}

/** A worker started by a {@link WorkerSpawner}, as its pool sees it. */
class SpawnedWorker implements PoolWorker {
  #port: MessagePort | null = null;
  /** Messages posted before the port came. */
  #queued: [unknown, Transferable[]][] = [];
  #ended = false;
  threadId?: number;

  constructor(
    private readonly onMessage: (data: unknown) => void,
    private readonly stop: () => void,
  ) {}

  connect(port: MessagePort, threadId: number | undefined): void {
    if (this.#ended) {
      port.close();
      return;
    }
    this.#port = port;
    if (threadId !== undefined) this.threadId = threadId;
    port.onmessage = (e: MessageEvent) => this.onMessage(e.data);
    for (const [msg, transfer] of this.#queued.splice(0)) port.postMessage(msg, transfer);
  }

  postMessage(msg: unknown, transfer: Transferable[]): void {
    if (this.#ended) return;
    if (this.#port) this.#port.postMessage(msg, transfer);
    else this.#queued.push([msg, transfer]);
  }

  terminate(): void {
    this.ended();
    this.stop();
  }

  /** The worker is gone: its port closes and nothing more is sent. */
  ended(): void {
    this.#ended = true;
    this.#queued = [];
    this.#port?.close();
    this.#port = null;
  }
}

/**
 * The host side of a {@link WorkerSpawner}: a handler for the host worker's messages that
 * starts and stops workers as `{troupeSpawn}` messages ask, answering with `post`; it returns
 * whether the message was the spawner's. `node:worker_threads` loads on the first start.
 */
export function serveSpawner(
  post: (msg: { troupeSpawned: SpawnReport }, transfer?: Transferable[]) => void,
): (data: unknown) => boolean {
  const children = new Map<number, NodeWorkerType>();
  const wrapper = new URL("./spawned_worker.ts", import.meta.url);
  let loading: Promise<typeof import("node:worker_threads")> | undefined;
  return (data) => {
    const req = (data as { troupeSpawn?: SpawnRequest } | null)?.troupeSpawn;
    if (!req) return false;
    if (req.terminate) {
      const child = children.get(req.id);
      children.delete(req.id);
      void child?.terminate();
      return true;
    }
    (loading ??= import("node:worker_threads")).then(({ Worker }) => {
      const { port1, port2 } = new MessageChannel();
      const child = new Worker(wrapper, {
        resourceLimits: req.limits ?? {},
        workerData: { [POOL_PORT.description!]: port1, url: req.url },
        transferList: [port1] as unknown as ConstructorParameters<
          typeof NodeWorkerType
        >[1] extends { transferList?: infer T } ? T : never,
      });
      children.set(req.id, child);
      child.on("error", (err: Error & { code?: string }) => {
        if (!children.delete(req.id)) return;
        post({
          troupeSpawned: {
            id: req.id,
            error: err?.message ?? String(err),
            ...(err?.code ? { code: err.code } : {}),
          },
        });
      });
      child.on("exit", (code: number) => {
        if (!children.delete(req.id)) return;
        post({ troupeSpawned: { id: req.id, exit: code } });
      });
      post({ troupeSpawned: { id: req.id, port: port2, threadId: child.threadId } }, [port2]);
    }).catch((err) => post({ troupeSpawned: { id: req.id, error: String(err) } }));
    return true;
  };
}

/** The OS thread of the worker with `threadId` (Deno names it `worker-<id>`), from Linux's `/proc`. */
function osThread(threadId: number): string | null {
  try {
    const name = `worker-${threadId}`;
    for (const e of Deno.readDirSync("/proc/self/task")) {
      if (Deno.readTextFileSync(`/proc/self/task/${e.name}/comm`).trim() === name) return e.name;
    }
  } catch {
    // No /proc (not Linux), or no permission to read it.
  }
  return null;
}

/**
 * CPU time (user + system, in clock ticks) of OS thread `tid`, and whether it sleeps; null when
 * that cannot be read.
 */
function threadCpu(tid: string): { ticks: number; asleep: boolean } | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/self/task/${tid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ticks: Number(fields[11]) + Number(fields[12]), asleep: fields[0] === "S" };
  } catch {
    return null;
  }
}

/** A worker's error as a plain `Error` with its name (the default {@link ErrorFactory}). */
export function workerError(e: WorkerError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** How {@link serveWorker} runs its thread. */
export interface ServeWorkerOptions {
  /**
   * The worker thread's nice value (Linux: a thread's own; 0–19, higher yields the CPU to
   * others). Background work at {@link backgroundNice} leaves the main thread, which answers
   * requests, first in line for a core when the machine has fewer free cores than busy
   * threads. Elsewhere, or without FFI permission, nothing changes. @default unchanged
   */
  nice?: number;
}

const DEFAULT_NICE = 10;

/**
 * The nice value of the pools' workers (PDF extraction, dataset chunks): `WORKER_NICE`, 0–19,
 * @default 10. Above 0 the thread that answers requests, and the database's backends on the same
 * machine, go first for a core when there are fewer free cores than busy threads; the workers
 * still take every core nobody else wants. On 2 cores, under a 200 MB ingest and three 300-page
 * PDFs with nothing else running, nice 10 halved the job reads over 50 ms and the ingest and PDFs
 * took no longer (bench/README.md, "The API under load"); where other processes keep the cores
 * busy, background work runs slower by as much as they take. 0 gives the workers an equal share.
 * A value that is not a whole number in 0–19 counts as the default.
 */
export function backgroundNice(): number {
  let raw: string | undefined;
  try {
    raw = Deno.env.get("WORKER_NICE");
  } catch {
    return DEFAULT_NICE;
  }
  const n = Number(raw ?? DEFAULT_NICE);
  return raw !== undefined && raw.trim() !== "" && Number.isInteger(n) && n >= 0 && n <= 19
    ? n
    : DEFAULT_NICE;
}

/**
 * Sets the calling thread's nice value (`setpriority(PRIO_PROCESS, 0, nice)`, which on Linux
 * sets the calling thread's, not the whole process's). Returns whether it was set: false
 * elsewhere than Linux, without FFI permission, or when the C library refuses.
 */
export function niceThisThread(nice: number): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    const lib = Deno.dlopen("libc.so.6", {
      setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
    });
    try {
      return lib.symbols.setpriority(0, 0, nice) === 0;
    } finally {
      lib.close();
    }
  } catch {
    return false;
  }
}

/**
 * The worker side: answers the pool's messages with `methods`. Call it once at the top of a
 * worker module.
 */
export function serveWorker(
  methods: Record<string, (...args: never[]) => unknown>,
  transferOf: (value: unknown) => Transferable[] = () => [],
  { nice }: ServeWorkerOptions = {},
): void {
  if (nice) niceThisThread(nice);
  // A worker a spawner started talks with its pool over the port it was given.
  const port = (globalThis as unknown as Record<symbol, MessagePort | undefined>)[POOL_PORT];
  const scope = port ?? globalThis as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(msg: unknown, transfer?: Transferable[]): void;
  };
  scope.onmessage = async (e: MessageEvent) => {
    const { id, method, args } = e.data as { id: number; method: string; args: unknown[] };
    try {
      const fn = methods[method];
      if (!fn) throw new Error(`unknown worker method ${method}`);
      const value = await (fn as (...a: unknown[]) => unknown)(...args);
      scope.postMessage({ id, ok: true, value }, transferOf(value));
    } catch (err) {
      const error: WorkerError = {
        name: (err as Error)?.name ?? "Error",
        message: (err as Error)?.message ?? String(err),
      };
      const code = (err as { code?: unknown })?.code;
      if (typeof code === "string") error.code = code;
      scope.postMessage({ id, ok: false, error });
    }
  };
}

/** The cores of this machine, at least 1. */
export function cores(): number {
  try {
    return Math.max(1, navigator.hardwareConcurrency || 1);
  } catch {
    return 1;
  }
}
