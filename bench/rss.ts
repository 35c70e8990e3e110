/** Resident memory of a benchmarked process, from /proc (Linux). */

/** A `Vm…` field of the process's status (kB there), in MB. */
async function statusMb(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
}

/** The process's peak resident set (VmHWM), in MB. */
export function peakRssMb(pid: number): Promise<number> {
  return statusMb(pid, "VmHWM");
}

/** The process's resident set now (VmRSS), in MB. */
export function rssMb(pid: number): Promise<number> {
  return statusMb(pid, "VmRSS");
}

/** Resets the process's peak to its current resident set (`clear_refs` 5). */
export async function resetPeakRss(pid: number): Promise<void> {
  await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
}

/** A process's resident set by where it lives, in MB (see {@link residentByKind}). */
export interface ResidentKinds {
  /** The executable's and libraries' pages (the Deno binary's code, mostly). */
  file: number;
  /** WebAssembly memories: an rw mapping followed by its reserve up to 2 GiB (PGlite's heap). */
  wasm: number;
  /** Anonymous mappings low in the address space: V8's heap pages, of every isolate. */
  v8: number;
  /** glibc's main arena (the brk heap) and its thread arenas (64 MiB aligned). */
  malloc: number;
  /** Other anonymous mappings: glibc's chunks of 128 KiB and more, thread stacks, V8's rest. */
  mmap: number;
}

const MIB = 1024 * 1024;

/**
 * The process's resident set by kind of mapping, from `/proc/PID/smaps` (Linux): where a peak
 * is, the database's WebAssembly heap, the JavaScript heaps or the C heap. The kinds are read
 * from the mappings' shapes, as V8 and glibc lay them out on x86-64 Linux.
 */
export async function residentByKind(pid: number): Promise<ResidentKinds> {
  const text = await Deno.readTextFile(`/proc/${pid}/smaps`);
  const maps: { start: number; end: number; perms: string; name: string; kb: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      maps.push({
        start: parseInt(m[1]!, 16),
        end: parseInt(m[2]!, 16),
        perms: m[3]!,
        name: m[4]!.trim(),
        kb: 0,
      });
    } else if (line.startsWith("Rss:") && maps.length) {
      maps[maps.length - 1]!.kb = Number(line.split(/\s+/)[1]);
    }
  }
  const out: ResidentKinds = { file: 0, wasm: 0, v8: 0, malloc: 0, mmap: 0 };
  for (let i = 0; i < maps.length; i++) {
    const { start, end, perms, name, kb } = maps[i]!;
    const next = maps[i + 1];
    // An rw mapping whose reserve (---p) follows it: a WebAssembly memory or a thread arena.
    const reserved = next && next.start === end && next.perms === "---p" && next.name === "" &&
        perms.startsWith("rw") && name === ""
      ? next.end - start
      : 0;
    let kind: keyof ResidentKinds;
    if (name === "[heap]") kind = "malloc";
    else if (name.startsWith("/")) kind = "file";
    else if (name !== "") kind = "mmap";
    else if (reserved === 2 * 1024 * MIB) kind = "wasm";
    else if ((reserved === 64 * MIB || end - start === 64 * MIB) && start % (64 * MIB) === 0) {
      kind = "malloc";
    } else if (start < 0x500000000000) kind = "v8";
    else kind = "mmap";
    out[kind] += kb / 1024;
  }
  return out;
}
