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
}

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
  }

  get #usesNodeWorkers(): boolean {
    return this.#youngMb !== undefined || this.#heapMb !== undefined;
  }

  /** Workers running now (started and not stopped). */
  get running(): number {
    return this.#slots.length;
  }

  /** Runs `method(...args)` in a worker; `transfer` lists buffers to move, not copy. */
  run<T>(method: string, args: unknown[], transfer: Transferable[] = []): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("the worker pool is closed"));
    if (NodeWorker === undefined && this.#usesNodeWorkers) {
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
        slot = this.#spawn();
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
      if (slot.tasks.length === 0 && this.#idleMs !== undefined) {
        slot.idle = setTimeout(() => {
          if (slot.tasks.length > 0 || !this.#slots.includes(slot)) return;
          this.#slots = this.#slots.filter((s) => s !== slot); // before: its exit is no crash
          slot.worker.terminate();
        }, this.#idleMs);
        Deno.unrefTimer(slot.idle);
      }
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

  /** A worker of the pool's kind, its messages and deaths reported to the handlers. */
  #start(
    onMessage: (data: unknown) => void,
    onCrash: (message: string, outOfMemory?: boolean) => void,
  ): PoolWorker {
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
    const worker = new NodeWorker(this.url, {
      resourceLimits: {
        ...(this.#youngMb === undefined ? {} : { maxYoungGenerationSizeMb: this.#youngMb }),
        ...(this.#heapMb === undefined ? {} : { maxOldGenerationSizeMb: this.#heapMb }),
      },
    });
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

/**
 * The nice value of the pools' workers (PDF extraction, dataset chunks): `WORKER_NICE`, 0–19,
 * @default 0. Above 0 the thread that answers requests goes first for a core when the machine
 * has fewer free cores than busy threads: on 2 cores, nice 10 brought the job read's p99 under
 * a 200 MB ingest from 260 to 207 ms and made that ingest and the PDFs beside it 1.3–2.7×
 * slower (bench/README.md, "The API under load"), so background work keeps its share unless
 * asked. A value that is not a whole number in 0–19 counts as 0.
 */
export function backgroundNice(): number {
  let raw: string | undefined;
  try {
    raw = Deno.env.get("WORKER_NICE");
  } catch {
    return 0;
  }
  const n = Number(raw ?? 0);
  return Number.isInteger(n) && n >= 0 && n <= 19 ? n : 0;
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
  const scope = globalThis as unknown as {
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
