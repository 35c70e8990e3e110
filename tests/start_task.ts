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

/** A port free on 127.0.0.1 now, for a server the caller is about to start. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Rate limits a load generator does not reach: the benches measure the server, not its limiter. */
export const UNLIMITED_RATES = { RATE_LIMIT_PER_IP: "1000000", RATE_LIMIT_PER_KEY: "10000000" };
