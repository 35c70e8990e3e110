/**
 * The server's command line exactly as `deno task start` runs it (deno.json: its leading
 * environment assignments and V8 flags included), for the tests and benchmarks that spawn
 * the server: they run what users run. `extra` flags (e.g. `--cpu-prof`) go before the
 * script; `script` replaces main.ts (to run another entry point with the server's runtime
 * flags). Spawn with `args` and `env` (merged into the caller's own variables).
 */
export async function startTask(
  extra: string[] = [],
  script?: string,
): Promise<{ args: string[]; env: Record<string, string> }> {
  const root = new URL("..", import.meta.url);
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))) as {
    tasks: Record<string, string>;
  };
  const words = config.tasks.start!.split(/\s+/);
  const env: Record<string, string> = {};
  while (/^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? "")) {
    const [name, ...value] = words.shift()!.split("=");
    env[name!] = value.join("=");
  }
  const [deno, ...args] = words;
  if (deno !== "deno" || args.at(-1) !== "main.ts") {
    throw new Error(`unexpected start task: ${config.tasks.start}`);
  }
  return {
    args: [...args.slice(0, -1), ...extra, script ?? new URL("main.ts", root).pathname],
    env,
  };
}

/**
 * A port free on 127.0.0.1 now, for a server the caller is about to start. It is drawn below
 * the kernel's ephemeral range: a port the kernel hands out for `port: 0` could go to one of
 * the in-process test servers in the seconds before the spawned server binds it (a CI run
 * once saw another test's server answer on it).
 */
export function freePort(): number {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    }
  }
  throw new Error(`no free port in 10000-${low - 1} after 50 tries`);
}

/** The first port of the kernel's ephemeral range (32768 where /proc does not say). */
function ephemeralLow(): number {
  try {
    const [low] = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(
      /\s+/,
    );
    const n = Number(low);
    return Number.isInteger(n) && n > 11_000 ? n : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * Waits until `url` answers 2xx (a server the caller started); throws when `server` exits first
 * or after `timeoutMs`.
 */
export async function untilUp(
  url: string,
  server: Deno.ChildProcess,
  { timeoutMs = 60_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  server.status.then(() => exited = true);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`the server exited before ${url} answered`);
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** Rate limits a load generator does not reach: the benches measure the server, not its limiter. */
export const UNLIMITED_RATES = { RATE_LIMIT_PER_IP: "1000000", RATE_LIMIT_PER_KEY: "10000000" };
