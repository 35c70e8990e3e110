/**
 * Gives the C heap's free memory back to the system, every `intervalMs`: glibc's
 * `malloc_trim(0)`, which returns the free pages of every arena, not only those at the top of
 * the heap that `free` returns by itself.
 *
 * Why: buffers under glibc's mmap threshold (socket reads and other `ArrayBuffer`s of up to
 * 128 KiB, under `deno task start`) live in the malloc heap; the collector frees them in
 * bursts, and the pages in between stay resident. A 1 GB dataset stored in PostgreSQL passes
 * ~2.7 GB of base64 text through node-postgres's socket reads on the main thread (the split
 * and the chunks read the blob's parts), and 10–40 MB of the heap was found free but resident
 * at any time.
 *
 * The call runs off the main thread (FFI `nonblocking`): a trim with much to give back takes tens
 * of milliseconds, which on the main thread would hold every request for as long. One trim runs
 * at a time; an interval that comes while one runs is skipped.
 *
 * Where the C library has no `malloc_trim` (not glibc) or FFI is not allowed, nothing is done.
 * @module
 */

/** The C library's `malloc_trim` (its result, or a promise of it when it runs on another thread). */
export type TrimFn = (pad: number) => number | Promise<number>;

/** glibc's `malloc_trim` and the library it was loaded from. */
export type LoadedTrimFn = TrimFn & {
  /** Unloads the C library (the function must not be called after). */
  close(): void;
};

/**
 * glibc's `malloc_trim`, called on a thread of Deno's blocking pool (it returns a promise), or
 * `null` (another C library, no FFI permission).
 */
export function glibcMallocTrim(): LoadedTrimFn | null {
  try {
    const lib = Deno.dlopen("libc.so.6", {
      malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true },
    });
    const trim = (pad: number) => lib.symbols.malloc_trim(BigInt(pad));
    return Object.assign(trim, { close: () => lib.close() });
  } catch {
    return null;
  }
}

/** A running trimmer ({@link startMallocTrim}). */
export interface MallocTrimmer {
  /** Trims done so far. */
  readonly trims: number;
  /** Whether there is a `malloc_trim` to call (false: the trimmer does nothing). */
  readonly active: boolean;
  /** Stops trimming and unloads the C library the trimmer loaded itself. */
  stop(): void;
}

/**
 * Calls `malloc_trim(0)` every `intervalMs` (0: never) on an unreferenced timer, which does not
 * keep the process alive. A trim takes ~1 ms, tens of ms when there is much to give back (off
 * this thread with {@link glibcMallocTrim}).
 */
export function startMallocTrim(
  { intervalMs = 500, trim }: {
    /** @default 500 */
    intervalMs?: number;
    /** @default glibcMallocTrim(), loaded only when the interval is not 0 */
    trim?: TrimFn | null;
  } = {},
): MallocTrimmer {
  const loaded = trim === undefined && intervalMs > 0 ? glibcMallocTrim() : null;
  const fn = trim === undefined ? loaded : trim;
  let trims = 0;
  /** The trim running on another thread, if any. */
  let running: Promise<unknown> | null = null;
  const timer = fn && intervalMs > 0
    ? setInterval(() => {
      if (running) return;
      const result = fn(0);
      trims++;
      if (result instanceof Promise) {
        running = result.catch(() => {}).finally(() => running = null);
      }
    }, intervalMs)
    : undefined;
  if (timer !== undefined) Deno.unrefTimer(timer);
  let stopped = false;
  return {
    get trims() {
      return trims;
    },
    active: timer !== undefined,
    stop() {
      if (stopped) return;
      stopped = true;
      if (timer !== undefined) clearInterval(timer);
      // The library stays loaded until a trim running on another thread has returned.
      if (running) running.finally(() => loaded?.close());
      else loaded?.close();
    },
  };
}
