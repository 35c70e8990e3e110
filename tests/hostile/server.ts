/**
 * The real server under attack: `main.ts` started as `deno task start` runs it (embedded, a
 * fresh `DATA_DIR`), watched from outside while an attack runs. A watcher samples the
 * server's resident memory from `/proc` and asks `/api/health` in a loop, each answer timed,
 * so a test can assert that memory stayed under its bound and health kept answering.
 */
import { freePort, startTask, untilUp } from "../start_task.ts";

export const DEV_KEY = "hostile-suite-dev-key-0123456789abcdef";

export interface Watch {
  /** Highest resident set seen, in MiB. */
  peakRssMb: number;
  /** Slowest health answer, in ms (a health request that failed counts as its timeout). */
  slowestHealthMs: number;
  /** Health requests made, and those that failed or did not answer 2xx in time. */
  healthChecks: number;
  healthFailures: string[];
}

export interface HostileServer {
  url: string;
  pid: number;
  dataDir: string;
  /** Headers of the dev tenant's key. */
  auth: Record<string, string>;
  /** Runs `attack` while watching; returns its result and what was seen meanwhile. */
  watch<T>(attack: () => Promise<T>): Promise<{ result: T; watch: Watch }>;
  /** Resident set now, in MiB. */
  rssMb(): number;
  /** Whether the process is still running. */
  alive(): boolean;
  /** How the process ended, if it did, and the last of what it wrote to stderr. */
  diagnosis(): string;
  close(): Promise<void>;
}

/** The resident set of `pid` in MiB (0 once it has exited). */
export function rssMb(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

/** Starts the server with `env` over the embedded defaults. */
export async function startHostileServer(
  env: Record<string, string> = {},
): Promise<HostileServer> {
  const dataDir = await Deno.makeTempDir({ prefix: "troupe-hostile-" });
  const port = freePort();
  const task = await startTask();
  const child = new Deno.Command(Deno.execPath(), {
    args: task.args,
    env: {
      ...task.env,
      DATA_DIR: dataDir,
      PORT: String(port),
      DEV_API_KEY: DEV_KEY,
      LOG_LEVEL: "error",
      RATE_LIMIT_PER_IP: "1000000",
      RATE_LIMIT_PER_KEY: "10000000",
      ...env,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  let exitStatus: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => {
    exited = true;
    exitStatus = s;
    return s;
  });
  // The server's complaints, kept for a failure message (bounded: the last 64 KiB).
  let stderr = "";
  const drained = (async () => {
    const decoder = new TextDecoder();
    for await (const bytes of child.stderr) {
      stderr = (stderr + decoder.decode(bytes, { stream: true })).slice(-65_536);
    }
  })();
  const url = `http://127.0.0.1:${port}`;
  try {
    await untilUp(`${url}/api/health`, child);
  } catch (err) {
    if (!exited) child.kill("SIGKILL");
    await status;
    await drained;
    await Deno.remove(dataDir, { recursive: true });
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }

  const server: HostileServer = {
    url,
    pid: child.pid,
    dataDir,
    auth: { "x-api-key": DEV_KEY },
    rssMb: () => rssMb(child.pid),
    alive: () => !exited,
    diagnosis: () =>
      `${
        exitStatus
          ? `the server exited (code ${exitStatus.code}, signal ${exitStatus.signal})`
          : "the server is running"
      }; its stderr ends with:\n${stderr.slice(-4_000)}`,
    async watch<T>(attack: () => Promise<T>) {
      const watch: Watch = {
        peakRssMb: rssMb(child.pid),
        slowestHealthMs: 0,
        healthChecks: 0,
        healthFailures: [],
      };
      let done = false;
      const sampler = (async () => {
        while (!done) {
          watch.peakRssMb = Math.max(watch.peakRssMb, rssMb(child.pid));
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const prober = (async () => {
        while (!done) {
          const started = performance.now();
          watch.healthChecks++;
          try {
            const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(5_000) });
            await res.body?.cancel();
            if (!res.ok) watch.healthFailures.push(`status ${res.status}`);
          } catch (err) {
            watch.healthFailures.push(exited ? "the server exited" : String(err));
          }
          watch.slowestHealthMs = Math.max(watch.slowestHealthMs, performance.now() - started);
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      let result: T;
      try {
        result = await attack();
      } finally {
        done = true;
        await Promise.all([sampler, prober]);
      }
      if (exited) throw new Error(`the server exited during the attack:\n${stderr.slice(-4_000)}`);
      return { result, watch };
    },
    async close() {
      if (!exited) child.kill("SIGTERM");
      const timer = setTimeout(() => exited || child.kill("SIGKILL"), 10_000);
      await status;
      clearTimeout(timer);
      await drained;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
  return server;
}

/** Polls a job until it ends; returns its final view. */
export async function jobOutcome(
  server: HostileServer,
  jobId: string,
  timeoutMs = 60_000,
): Promise<{ status: string; attempts: number; error: { code: string } | null }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await fetch(`${server.url}/api/jobs/${jobId}`, { headers: server.auth });
    const job = await res.json();
    if (["succeeded", "failed", "cancelled"].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`job ${jobId} did not end within ${timeoutMs} ms`);
}
