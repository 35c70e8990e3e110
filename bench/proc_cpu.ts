/**
 * CPU time of this process and of the server processes a benchmark talks to, from `/proc`
 * (Linux). The servers are local: PostgreSQL's backends of one database (their command line is
 * `postgres: [CLUSTER: ]USER DATABASE HOST ...`) and `redis-server`. PostgreSQL's shared processes (WAL
 * writer, checkpointer) are not counted: they serve every database of the server.
 *
 * A backend that exits between two samples takes its CPU time with it: sample while the
 * connections are open.
 */
import process from "node:process";

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU ms of the processes whose command line matches `match`, by pid. */
export function serverCpu(match: RegExp): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (!match.test(cmd)) continue;
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(entry.name), (Number(f[11]) + Number(f[12])) * TICK_MS);
    } catch {
      // The process ended meanwhile.
    }
  }
  return out;
}

/** The CPU ms the matched processes spent between two samples (new processes count from 0). */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

/** The backends of PostgreSQL database `name`. */
export const backendsOf = (name: string): RegExp => new RegExp(`^postgres: (\\S+: )?\\S+ ${name} `);

/** This process's CPU ms (user + system). */
export function ownCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
