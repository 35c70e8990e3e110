/**
 * Sums a V8 CPU profile (`deno run --cpu-prof --cpu-prof-dir=DIR ...`) by where the time went:
 * self time by part (the runtime's files one by one, the database driver, PGlite, zod, Deno's
 * built-ins, garbage collection, idle) and the functions with the most self time.
 *
 *   deno run -A bench/cpu_profile.ts DIR_OR_FILE.cpuprofile [--top 15] [--bursts FILE]
 *
 * `--bursts FILE` (bench/uploads.ts writes it with `--cpu-prof`): a JSON list of
 * `{scenario, from, to}` in seconds since boot (a profile's clock); one summary a window, of the
 * samples taken in it, with the functions by total time (their callees' included) beside their
 * self time.
 */
import { parseArgs } from "node:util";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  options: { top: { type: "string", default: "15" }, bursts: { type: "string" } },
  allowPositionals: true,
});

function partOf({ functionName, url }: Node["callFrame"]): string {
  if (!url) {
    if (functionName === "(garbage collector)") return "garbage collection";
    if (functionName === "(idle)") return "idle";
    if (functionName === "(program)") return "V8 and native code";
    return `native: ${functionName}`;
  }
  if (url.startsWith("wasm://")) return "PGlite: WebAssembly (PostgreSQL)";
  if (url.includes("@electric-sql/pglite")) return "PGlite: its JS (protocol, in-memory files)";
  if (/\/(pg|pg-protocol|pg-pool|pg-types|pgpass|postgres-\w+)@/.test(url)) {
    return "node-postgres driver";
  }
  if (url.includes("/zod@")) return "zod";
  const runtime = url.match(/actors\/runtime\/(.+)$/);
  if (runtime) return `runtime: ${runtime[1]}`;
  if (url.includes("/bench/")) return "bench";
  if (url.startsWith("node:") || url.startsWith("ext:")) return "Deno and node: built-ins";
  const pkg = url.match(/node_modules\/\.deno\/([^/]+)/);
  return pkg ? `npm: ${pkg[1]}` : url;
}

const paths: string[] = [];
for (const p of positionals) {
  if ((await Deno.stat(p)).isDirectory) {
    for await (const e of Deno.readDir(p)) {
      if (e.name.endsWith(".cpuprofile")) paths.push(`${p}/${e.name}`);
    }
  } else paths.push(p);
}
const profiles = await Promise.all(
  paths.map(async (path) => JSON.parse(await Deno.readTextFile(path)) as Profile),
);

function fnName({ functionName, url, lineNumber }: Node["callFrame"]): string {
  return `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}:${lineNumber + 1}`;
}

/** Sums the samples taken between `from` and `to` (seconds on the profiles' clock). */
function summarize(title: string, from = -Infinity, to = Infinity): void {
  const parts = new Map<string, number>();
  const fns = new Map<string, number>();
  const totals = new Map<string, number>();
  let total = 0;
  for (const prof of profiles) {
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    let at = prof.startTime;
    for (const [i, id] of prof.samples.entries()) {
      const us = prof.timeDeltas[i] ?? 0;
      at += us;
      if (at < from * 1e6 || at > to * 1e6) continue;
      const node = byId.get(id)!;
      const part = partOf(node.callFrame);
      parts.set(part, (parts.get(part) ?? 0) + us);
      const f = fnName(node.callFrame);
      fns.set(f, (fns.get(f) ?? 0) + us);
      total += us;
      if (part === "idle") continue;
      const seen = new Set<string>();
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        const name = fnName(byId.get(n)!.callFrame);
        if (seen.has(name)) continue;
        seen.add(name);
        totals.set(name, (totals.get(name) ?? 0) + us);
      }
    }
  }
  const busy = total - (parts.get("idle") ?? 0);
  console.log(
    `${title}${profiles.length} profile(s), ${(total / 1e6).toFixed(1)} s sampled, ` +
      `${(busy / 1e6).toFixed(1)} s busy\n`,
  );
  console.log("| part | self ms | % of busy |");
  console.log("|---|---|---|");
  for (const [part, us] of [...parts].sort((a, b) => b[1] - a[1])) {
    if (part === "idle" || us / busy < 0.005) continue;
    console.log(`| ${part} | ${(us / 1000).toFixed(0)} | ${(us / busy * 100).toFixed(1)} |`);
  }
  console.log("\n| function | self ms |");
  console.log("|---|---|");
  for (const [f, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))) {
    console.log(`| ${f} | ${(us / 1000).toFixed(0)} |`);
  }
  if (!Number.isFinite(from)) return;
  console.log("\n| function | total ms (callees included) | self ms |");
  console.log("|---|---|---|");
  const roots = new Set(["(root) :0", "(program) :0", "(garbage collector) :0"]);
  for (
    const [f, us] of [...totals].filter(([f]) => !roots.has(f)).sort((a, b) => b[1] - a[1])
      .slice(0, Number(args.top))
  ) {
    console.log(`| ${f} | ${(us / 1000).toFixed(0)} | ${((fns.get(f) ?? 0) / 1000).toFixed(0)} |`);
  }
}

if (args.bursts) {
  const windows = JSON.parse(await Deno.readTextFile(args.bursts)) as {
    db?: string;
    scenario: string;
    from: number;
    to: number;
  }[];
  for (const w of windows) {
    summarize(
      `## ${w.db ?? ""} ${w.scenario}, ${(w.to - w.from).toFixed(2)} s window: `,
      w.from,
      w.to,
    );
    console.log();
  }
} else summarize("");
