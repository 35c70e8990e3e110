/**
 * What held the server's main thread when job reads were slow, from a run of
 * `deno run -A bench/api_under_load.ts --stalls DIR --cpu-prof PROF`: the poller's reads
 * (`DIR/<db>.reads.json`), the server's stalls (`DIR/<db>.stalls.jsonl`, `bench/stall_log.ts`:
 * turns of its event loop over 20 ms late) and its CPU profile (`PROF/<db>/*.cpuprofile`, the
 * main thread's, found by the stall log's marker). Each stall gets the cause that took most of its
 * samples (the stack's first frame a rule below names: garbage collection, PGlite's ANALYZE,
 * a COPY slice, other PGlite statements, a worker's start, messages from workers, ...); each read
 * over 50 ms gets the cause of the stall that overlapped it most, or "no stall" (it waited on
 * something other than the main thread: the database's connection, the network, the poller).
 *
 *   deno run -A bench/stall_attribution.ts DIR PROF --db pglite [--show 10]
 */
import { parseArgs } from "node:util";

interface Frame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface Node {
  id: number;
  callFrame: Frame;
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
  options: {
    db: { type: "string", default: "pglite" },
    show: { type: "string", default: "10" },
    over: { type: "string", default: "50" },
  },
  allowPositionals: true,
});
const [dir, profDir] = positionals;
if (!dir) throw new Error("usage: stall_attribution.ts DIR [PROF] --db DB");
const db = args.db;
const OVER = Number(args.over);

const { t0, samples } = JSON.parse(await Deno.readTextFile(`${dir}/${db}.reads.json`)) as {
  t0: number;
  samples: [number, number, number, number][];
};
const lines = (await Deno.readTextFile(`${dir}/${db}.stalls.jsonl`)).trim().split("\n").map((l) =>
  JSON.parse(l) as { marker?: [number, number]; stall?: [number, number] }
);
const marker = lines.find((l) => l.marker)?.marker;
/** PostgreSQL: the job reads' queries timed in the server (`bench/stall_log.ts`, `PG_TIMING_LOG`). */
const pgLines = await Deno.readTextFile(`${dir}/${db}.pg.jsonl`).then(
  (t) => t.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)),
  () => [],
) as { read?: [number, number, number, number, number, number, number | null]; wait?: number[] }[];
const pgReads = pgLines.flatMap((l) => l.read ? [l.read] : []);
const pgWaits = pgLines.flatMap((l) => l.wait ? [l.wait] : []);
const stalls = lines.flatMap((l) => l.stall ? [l.stall] : []);

/** Cause rules, first match over the stack from the leaf up. */
function causeOf(stack: Frame[]): string {
  const leaf = stack[0]!;
  if (leaf.functionName === "(garbage collector)") return "garbage collection";
  if (leaf.functionName === "(idle)") return "idle sample (off a core / in a syscall)";
  if (leaf.functionName === "(program)") return "V8 and native code (no JS frame)";
  const has = (re: RegExp, url?: RegExp) =>
    stack.some((f) => re.test(f.functionName) && (!url || url.test(f.url)));
  if (has(/^stallLogMarker$/)) return "marker";
  if (has(/analy[sz]e/i, /actors\/runtime/)) return "runtime ANALYZE";
  const pglite = stack.some((f) =>
    f.url.includes("@electric-sql/pglite") || f.url.startsWith("wasm")
  );
  if (pglite && has(/copy/i, /drivers\/pglite/)) return "PGlite COPY slice";
  if (pglite) {
    const caller = stack.find((f) => /\/work\/.*\.ts$/.test(f.url) && !f.url.includes("drivers/"));
    return `PGlite statement (${caller ? short(caller) : "?"})`;
  }
  if (
    has(/^(op_create_worker|NodeWorker)$/) || has(/^Worker$/) ||
    has(/.*/, /11_workers|06_util|worker/i) && has(/^(Worker|start)$/)
  ) {
    return "worker start";
  }
  if (has(/.*/, /11_workers\.js/)) return "worker messages (deserialize)";
  if (has(/^(parse|stringify)$/) && leaf.url === "") return `JSON ${leaf.functionName}`;
  if (stack.some((f) => /\/(pg|pg-protocol|pg-pool|pg-types)@/.test(f.url))) return "node-postgres";
  const app = stack.find((f) => /\/work\/.*\.ts$/.test(f.url));
  if (app) return `app: ${short(app)}`;
  if (stack.some((f) => /hono@/.test(f.url))) return "hono";
  if (stack.some((f) => f.url.startsWith("ext:") || f.url.startsWith("node:"))) {
    return `Deno built-ins: ${
      short(stack.find((f) => f.url.startsWith("ext:") || f.url.startsWith("node:"))!)
    }`;
  }
  return `other: ${short(leaf)}`;
}
function short(f: Frame): string {
  return `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${
    f.lineNumber + 1
  }`;
}

/** [epoch ms of the sample's start, duration ms, cause] for the main thread's profile. */
let timeline: [number, number, string][] = [];
if (profDir && marker) {
  const files: string[] = [];
  for await (const e of Deno.readDir(`${profDir}/${db}`)) {
    if (e.name.endsWith(".cpuprofile")) files.push(`${profDir}/${db}/${e.name}`);
  }
  for (const file of files) {
    const prof = JSON.parse(await Deno.readTextFile(file)) as Profile;
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const stackOf = (id: number): Frame[] => {
      const out: Frame[] = [];
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        out.push(byId.get(n)!.callFrame);
      }
      return out;
    };
    const causes = new Map<number, string>();
    let t = prof.startTime;
    const times: number[] = [];
    for (const d of prof.timeDeltas) times.push(t += d);
    const markerAt = prof.samples.findIndex((id) =>
      stackOf(id).some((f) => f.functionName === "stallLogMarker")
    );
    if (markerAt < 0) continue;
    // The sample before the marker's first one ended where the marker began.
    const offset = marker[0] - (times[markerAt - 1] ?? times[markerAt]!) / 1000;
    for (let i = 0; i < prof.samples.length; i++) {
      const id = prof.samples[i]!;
      let cause = causes.get(id);
      if (cause === undefined) causes.set(id, cause = causeOf(stackOf(id)));
      const end = times[i]! / 1000 + offset;
      const start = i ? times[i - 1]! / 1000 + offset : end;
      timeline.push([start, end - start, cause]);
    }
    console.log(`profile ${file}: ${prof.samples.length} samples, marker at offset ${offset}`);
    break;
  }
}
timeline = timeline.sort((a, b) => a[0] - b[0]);

function causesIn(s: number, e: number): Map<string, number> {
  const m = new Map<string, number>();
  // Binary search for the first sample ending after s.
  let lo = 0, hi = timeline.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (timeline[mid]![0] + timeline[mid]![1] < s) lo = mid + 1;
    else hi = mid;
  }
  let covered = 0;
  for (let i = lo; i < timeline.length && timeline[i]![0] < e; i++) {
    const [a, d, c] = timeline[i]!;
    const part = Math.min(e, a + d) - Math.max(s, a);
    if (part <= 0) continue;
    // A gap between two samples longer than 5 ms: the thread was not sampled (off a core).
    if (d > 5) {
      m.set("unsampled (thread off a core)", (m.get("unsampled (thread off a core)") ?? 0) + part);
    } else m.set(c, (m.get(c) ?? 0) + part);
    covered += part;
  }
  if (timeline.length && e - s - covered > 1) {
    m.set("no samples", (m.get("no samples") ?? 0) + e - s - covered);
  }
  return m;
}
const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);

const stallCause = stalls.map(([s, e]) => {
  const m = causesIn(s, e);
  return { s, e, cause: timeline.length ? top(m)[0]?.[0] ?? "?" : "stall", parts: m };
});

const ok = samples.filter(([, , st]) => st === 200);
const slow = ok.filter(([, ms]) => ms >= OVER);
const byCause = new Map<string, number>();
const byCauseMs = new Map<string, number>();
const details: string[] = [];
for (const [at, ms, , plain] of slow) {
  const start = t0 + at - Math.max(ms, plain);
  const end = start + ms;
  let best: (typeof stallCause)[number] | null = null;
  let bestOverlap = 0;
  for (const st of stallCause) {
    const o = Math.min(end, st.e) - Math.max(start, st.s);
    if (o > bestOverlap) [best, bestOverlap] = [st, o];
  }
  let cause = best && bestOverlap >= 10 ? best.cause : "no stall on the main thread";
  // The job read's query in the window (PostgreSQL): which part of it was slow.
  const q = pgReads.filter(([call, , done]) => call >= start - 5 && done <= end + 5)
    .sort((a, b) => (b[2] - b[0]) - (a[2] - a[0]))[0];
  let query = "";
  if (q) {
    const [call, acquired, done, waiting, , , serverMs] = q;
    const pool = acquired - call, answer = done - acquired;
    query = ` | query ${(done - call).toFixed(0)} ms: pool ${pool.toFixed(0)}, answer ${
      answer.toFixed(0)
    } (server ${serverMs === null ? "< 5" : serverMs.toFixed(0)}), waiters ${waiting}`;
    if (cause === "no stall on the main thread") {
      cause = pool >= 10
        ? "no stall: waited for a pooled connection"
        : (serverMs ?? 0) >= 10
        ? "no stall: the database server's time"
        : answer >= 20
        ? "no stall: the answer (server < 10 ms, network, this process)"
        : "no stall: outside the query (HTTP, this process)";
    }
  }
  byCause.set(cause, (byCause.get(cause) ?? 0) + 1);
  // Where the read's time on the main thread went, over every stall it overlapped.
  for (const st of stallCause) {
    const o = Math.min(end, st.e) - Math.max(start, st.s);
    if (o <= 0) continue;
    for (const [c, v] of causesIn(Math.max(start, st.s), Math.min(end, st.e))) {
      byCauseMs.set(c, (byCauseMs.get(c) ?? 0) + v);
    }
  }
  details.push(
    `${(at / 1000).toFixed(1)} s: read ${ms.toFixed(0)} ms (asset ${plain.toFixed(0)}): ${
      best && bestOverlap >= 10
        ? `stall ${(best.e - best.s).toFixed(0)} ms: ${
          top(best.parts).slice(0, 3).map(([c, v]) => `${c} ${v.toFixed(0)}`).join(", ")
        }`
        : "no stall"
    }${query}`,
  );
}
const stallMs = stalls.reduce((a, [s, e]) => a + e - s, 0);
if (pgReads.length) {
  const ms = (xs: number[]) => xs.sort((a, b) => a - b);
  const pools = ms(pgReads.map(([c, a]) => a - c));
  const answers = ms(pgReads.map(([, a, d]) => d - a));
  const server = pgReads.filter((r) => r[6] !== null);
  const p = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
  console.log(
    `job read queries: ${pgReads.length}; pool wait p50 ${p(pools, 0.5).toFixed(1)} / p99 ${
      p(pools, 0.99).toFixed(1)
    } / max ${pools.at(-1)!.toFixed(0)} ms, ${pools.filter((x) => x >= 10).length} ≥ 10 ms; ` +
      `answer p50 ${p(answers, 0.5).toFixed(1)} / p99 ${p(answers, 0.99).toFixed(1)} / max ${
        answers.at(-1)!.toFixed(0)
      } ms; ${server.length} over 5 ms in the server (max ${
        Math.max(0, ...server.map((r) => r[6]!)).toFixed(0)
      } ms); connections asked of a full pool: ${pgWaits.length} (waited max ${
        Math.max(0, ...pgWaits.map(([c, a]) => a! - c!)).toFixed(0)
      } ms)`,
  );
}
console.log(
  `${db}: ${ok.length} reads, ${slow.length} ≥ ${OVER} ms; ${stalls.length} stalls > 20 ms ` +
    `(${(stallMs / 1000).toFixed(1)} s, longest ${
      Math.max(0, ...stalls.map(([s, e]) => e - s)).toFixed(0)
    } ms)`,
);
console.log(`\n| cause (stall overlapping the read most) | reads ≥ ${OVER} ms | share |`);
console.log("|---|---|---|");
for (const [c, n] of top(byCause)) {
  console.log(`| ${c} | ${n} | ${(n / slow.length * 100).toFixed(0)} % |`);
}
console.log(`\n| main-thread time inside slow reads' stalls | ms | share |`);
console.log("|---|---|---|");
const allMs = [...byCauseMs.values()].reduce((a, b) => a + b, 0);
for (const [c, v] of top(byCauseMs).slice(0, 15)) {
  console.log(`| ${c} | ${v.toFixed(0)} | ${(v / allMs * 100).toFixed(0)} % |`);
}
const allStalls = new Map<string, number>();
for (const st of stallCause) {
  for (const [c, v] of st.parts) allStalls.set(c, (allStalls.get(c) ?? 0) + v);
}
console.log(`\n| main-thread time in all stalls | ms |`);
console.log("|---|---|");
for (const [c, v] of top(allStalls).slice(0, 15)) console.log(`| ${c} | ${v.toFixed(0)} |`);
console.log(`\nslowest reads:`);
for (
  const d of details.sort((a, b) =>
    Number(b.split("read ")[1]!.split(" ")[0]) - Number(a.split("read ")[1]!.split(" ")[0])
  ).slice(0, Number(args.show))
) {
  console.log(`  ${d}`);
}
