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
