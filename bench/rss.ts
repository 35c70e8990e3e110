/** Peak resident memory of a benchmarked process, from /proc (Linux). */

/** The process's peak resident set (VmHWM), in MB. */
export async function peakRssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Resets the process's peak to its current resident set (`clear_refs` 5). */
export async function resetPeakRss(pid: number): Promise<void> {
  await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
}
