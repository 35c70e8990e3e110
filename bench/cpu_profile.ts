/**
 * Sums a V8 CPU profile (`deno run --cpu-prof --cpu-prof-dir=DIR ...`) by where the time went:
 * self time by part (the runtime's files one by one, the database driver, PGlite, zod, Deno's
 * built-ins, garbage collection, idle) and the functions with the most self time.
 *
 *   deno run -A bench/cpu_profile.ts DIR_OR_FILE.cpuprofile [--top 15]
 */
import { parseArgs } from "node:util";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  options: { top: { type: "string", default: "15" } },
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
const parts = new Map<string, number>();
const fns = new Map<string, number>();
let total = 0;
for (const path of paths) {
  const prof = JSON.parse(await Deno.readTextFile(path)) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  for (const [i, id] of prof.samples.entries()) {
    const us = prof.timeDeltas[i] ?? 0;
    const node = byId.get(id)!;
    const part = partOf(node.callFrame);
    parts.set(part, (parts.get(part) ?? 0) + us);
    const f = `${node.callFrame.functionName || "(anonymous)"} ${
      node.callFrame.url.split("/").slice(-2).join("/")
    }:${node.callFrame.lineNumber + 1}`;
    fns.set(f, (fns.get(f) ?? 0) + us);
    total += us;
  }
}
const busy = total - (parts.get("idle") ?? 0);
console.log(
  `${paths.length} profile(s), ${(total / 1e6).toFixed(1)} s sampled, ` +
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
