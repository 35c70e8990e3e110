/**
 * CPU time of this process's threads, by kind (Linux): each thread's CPU clock read with
 * `clock_gettime` (libc, through FFI: nanoseconds; `/proc`'s counters tick every 10 ms) and its
 * context switches from `/proc/self/task/<tid>/status`: the main thread, Deno Workers
 * (`worker-N`), V8's platform threads (GC, compiler) and the rest (tokio's threads: file and
 * network operations). A thread that ended between two samples takes its time with it.
 */

const libc = Deno.dlopen("libc.so.6", {
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
});
const timespec = new BigInt64Array(2);

/** Nanoseconds thread `tid` (of this process) has run, or null when it has ended. */
function threadCpuNs(tid: number): number | null {
  // The clock id of a thread's CPU time (CPUCLOCK_SCHED, per thread: Linux's posix-cpu-timers).
  const clock = (~tid << 3) | 6;
  if (libc.symbols.clock_gettime(clock, timespec) !== 0) return null;
  return Number(timespec[0]) * 1e9 + Number(timespec[1]);
}

/** One thread's counters. */
interface ThreadSample {
  kind: ThreadKind;
  cpuNs: number;
  switches: number;
}

/** What a thread is, by its name. */
export type ThreadKind = "main" | "worker" | "v8" | "other";

/** Counters of every thread of this process, by thread id. */
export function threadSample(): Map<number, ThreadSample> {
  const out = new Map<number, ThreadSample>();
  for (const entry of Deno.readDirSync("/proc/self/task")) {
    const tid = Number(entry.name);
    try {
      const dir = `/proc/self/task/${tid}`;
      const comm = Deno.readTextFileSync(`${dir}/comm`).trim();
      const cpuNs = threadCpuNs(tid);
      if (cpuNs === null) continue;
      const status = Deno.readTextFileSync(`${dir}/status`);
      const sw = [...status.matchAll(/ctxt_switches:\s+(\d+)/g)].reduce((n, m) => n + +m[1]!, 0);
      const kind: ThreadKind = tid === Deno.pid
        ? "main"
        : comm.startsWith("worker-")
        ? "worker"
        : comm.startsWith("V8 ")
        ? "v8"
        : "other";
      out.set(tid, { kind, cpuNs, switches: sw });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** CPU ms and context switches by kind between two samples. */
export type ThreadCpu = Record<ThreadKind, { cpuMs: number; switches: number }>;

export function threadCpuBetween(
  before: Map<number, ThreadSample>,
  after: Map<number, ThreadSample>,
): ThreadCpu {
  const out = {} as ThreadCpu;
  for (const k of ["main", "worker", "v8", "other"] as const) {
    out[k] = { cpuMs: 0, switches: 0 };
  }
  for (const [tid, a] of after) {
    const b = before.get(tid);
    const o = out[a.kind];
    o.cpuMs += (a.cpuNs - (b?.cpuNs ?? 0)) / 1e6;
    o.switches += a.switches - (b?.switches ?? 0);
  }
  return out;
}

/** A meter from now: `read()` gives the threads' CPU since. */
export function threadMeter(): () => ThreadCpu {
  const before = threadSample();
  return () => threadCpuBetween(before, threadSample());
}
