/**
 * Dataset uploads against their floor, on the embedded default (PGlite, files in DATA_DIR) and on
 * PostgreSQL (files in `troupe_blob_parts`): the real server (`main.ts` in its own process,
 * rate limits raised for the run) and a discard server (a Deno HTTP server in its own process
 * that reads each body to its end and answers 202 with the route's shape), both driven by this
 * one client process (`node:http` with an Agent of up to 300 keep-alive sockets, each body a
 * shared base buffer behind a unique first row, with its Content-Length).
 *
 * Beside the discard server, a storage floor in its own process streams each body where the
 * database's blob store puts it, with nothing else: a table of the blob parts' layout on
 * PostgreSQL (bench/uploads_pg_floor.ts), a file with FsBlobStore's durable steps on PGlite
 * (bench/uploads_fs_floor.ts; its files checked, size of all and SHA-256 of a sample, then
 * removed after each scenario).
 *
 * Two scenarios per database, each run discard → storage floor → Troupe → storage floor → discard
 * (the host's speed drifts; a ratio is Troupe's p99 over the mean of the two floors' p99):
 * - 20 concurrent 10 MB CSV uploads (target: p99 ≤ 1.5× the floor);
 * - 300 concurrent 1 MB CSV uploads (target: all accepted, nothing lost, p99 ≤ 2× the floor).
 *
 * Nothing lost: after a scenario, every accepted dataset is read back (`GET /api/v1/datasets/:id`)
 * and must hold the bytes sent (size and SHA-256); without `--quick` the bench then waits until
 * every dataset is ready (rows counted against those sent) before the next scenario starts, so
 * one scenario's ingest does not run under the next one's uploads.
 *
 *   deno run -A bench/uploads.ts [--db pglite,postgres] [--quick] [--big 20] [--small 300]
 *
 * `--quick`: 10 × 10 MB and 100 × 1 MB, without waiting for the ingests. `--big 0` or `--small 0`
 * leaves a scenario out; `--cpu-prof DIR` writes the server's V8 CPU profile under DIR/<db> and
 * the time of each of Troupe's bursts in DIR/bursts.json (read them with bench/cpu_profile.ts
 * DIR/<db> --bursts DIR/bursts.json: one summary a burst).
 */
import { parseArgs } from "node:util";
import http from "node:http";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { createPgDatabase } from "../tests/harness.ts";
import { freePort, startTask, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";
import { loadAverage, pct } from "./stats.ts";
import { seeded } from "../tests/fixtures/seeded.ts";
import { backendsOf, cpuBetween, serverCpu } from "./proc_cpu.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    db: { type: "string", default: "pglite,postgres" },
    quick: { type: "boolean", default: false },
    big: { type: "string" },
    small: { type: "string" },
    json: { type: "string", default: "bench/results/uploads.json" },
    "cpu-prof": { type: "string" },
  },
});
const QUICK = args.quick;
const BIG = Number(args.big ?? (QUICK ? 10 : 20));
const SMALL = Number(args.small ?? (QUICK ? 100 : 300));
const KEY = "troupe-bench-key-0123456789abcdef";

/** A CSV body of about `bytes`: a header and rows of mixed columns (the same for every upload). */
function baseCsv(bytes: number): { header: Buffer; rows: Buffer; rowCount: number } {
  const lines: string[] = [];
  let size = 0;
  const rand = seeded(7);
  const cities = ["Paris", "Lyon", "Berlin", "Madrid", "Roma", "Oslo"];
  while (size < bytes) {
    const n = lines.length;
    const line = `${n},u${Math.floor(rand() * 50_000)},${(rand() * 1000).toFixed(2)},${
      cities[Math.floor(rand() * cities.length)]
    },2024-0${1 + Math.floor(rand() * 9)}-1${Math.floor(rand() * 9)},${rand() < 0.5},note ${
      n % 997
    }\n`;
    lines.push(line);
    size += line.length;
  }
  return {
    header: Buffer.from("id,user,amount,city,day,active,note\n"),
    rows: Buffer.from(lines.join("")),
    rowCount: lines.length,
  };
}

interface Sent {
  ms: number;
  status: number;
  body: Record<string, unknown>;
  size: number;
  sha256: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 300, maxFreeSockets: 300 });

/** One upload: the header, a unique first row, the shared rows; latency to the end of the answer. */
function upload(url: URL, base: ReturnType<typeof baseCsv>, tag: string): Promise<Sent> {
  const unique = Buffer.from(`-1,${tag},0.00,Paris,2024-01-11,true,unique ${tag}\n`);
  const size = base.header.length + unique.length + base.rows.length;
  const sha256 = createHash("sha256").update(base.header).update(unique).update(base.rows)
    .digest("hex");
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({
      agent,
      host: url.hostname,
      port: url.port,
      path: `${url.pathname}?name=${tag}`,
      method: "POST",
      headers: { "content-type": "text/csv", "content-length": size, "x-api-key": KEY },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const ms = performance.now() - t0;
        const text = Buffer.concat(chunks).toString();
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text);
        } catch {
          body = { text: text.slice(0, 200) };
        }
        resolve({ ms, status: res.statusCode ?? 0, body, size, sha256 });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.write(base.header);
    req.write(unique);
    req.end(base.rows);
  });
}

async function burst(
  url: URL,
  base: ReturnType<typeof baseCsv>,
  n: number,
  tag: string,
): Promise<Sent[]> {
  return await Promise.all(Array.from({ length: n }, (_, i) => upload(url, base, `${tag}-${i}`)));
}

/** Seconds since boot: the clock of a V8 CPU profile's `startTime` (CLOCK_MONOTONIC), to 10 ms. */
function uptime(): number {
  return Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
}

/** Troupe's bursts, on the profile's clock (with `--cpu-prof`: bench/cpu_profile.ts --bursts). */
const bursts: {
  db: string;
  scenario: string;
  from: number;
  to: number;
  fromMs: number;
  toMs: number;
}[] = [];

/** CPU ms of process `pid` (user + system), from /proc. */
function pidCpu(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** CPU seconds spent during a burst: its server's process and the database's backends. */
interface BurstCpu {
  server: number;
  backends: number | null;
}

/** `run` with the CPU its server (`pid`) and the database's backends (`db`) spent meanwhile. */
async function withCpu<T>(
  pid: number,
  db: string | null,
  run: () => Promise<T>,
): Promise<[T, BurstCpu]> {
  const s0 = pidCpu(pid);
  const b0 = db ? serverCpu(backendsOf(db)) : null;
  const out = await run();
  const backends = db ? cpuBetween(b0!, serverCpu(backendsOf(db))) / 1000 : null;
  return [out, { server: (pidCpu(pid) - s0) / 1000, backends }];
}

/** The floor: reads each body to its end, answers 202 with the upload route's shape. */
async function discardServer(dir: string): Promise<{ url: string; child: Deno.ChildProcess }> {
  const script = `${dir}/discard_server.ts`;
  await Deno.writeTextFile(
    script,
    `Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen() {} }, async (req) => {
  if (req.body) for await (const _ of req.body) { /* discarded */ }
  const id = crypto.randomUUID();
  return Response.json({ datasetId: id, jobId: id, status: "uploaded" }, { status: 202 });
});
`,
  );
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--allow-net=127.0.0.1", script, String(port)],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await untilUp(url, child, { timeoutMs: 15_000 });
  return { url, child };
}

/** A storage floor in its own process; `dir` holds its files (the embedded default's floor). */
interface StoreFloor {
  url: string;
  child: Deno.ChildProcess;
  dir: string | null;
}

/**
 * The storage floor on PostgreSQL (bench/uploads_pg_floor.ts, its own process): each body
 * streamed into a table of the blob parts' layout, one transaction an upload, answered 202.
 */
async function pgFloorServer(databaseUrl: string): Promise<StoreFloor> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./uploads_pg_floor.ts", import.meta.url).pathname, String(port)],
    env: { FLOOR_DATABASE_URL: databaseUrl },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await untilUp(url, child, { timeoutMs: 30_000 });
  return { url, child, dir: null };
}

/**
 * The storage floor on the embedded default (bench/uploads_fs_floor.ts, its own process): each
 * body streamed into a file under `dir` with FsBlobStore's durable steps, answered 202.
 */
async function fsFloorServer(dir: string): Promise<StoreFloor> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./uploads_fs_floor.ts", import.meta.url).pathname,
      String(port),
      dir,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await untilUp(url, child, { timeoutMs: 30_000 });
  return { url, child, dir };
}

/** What the PostgreSQL storage floor holds: uploads and bytes. */
async function floorStored(url: string): Promise<{ uploads: number; bytes: number }> {
  return await (await fetch(`${url}/floor/stored`)).json();
}

/** Files the file floor holds under `dir` (its `tmp` left out): path → size. */
async function floorFiles(dir: string): Promise<Map<string, number>> {
  const files = new Map<string, number>();
  for await (const sub of Deno.readDir(dir)) {
    if (!sub.isDirectory || sub.name === "tmp") continue;
    for await (const f of Deno.readDir(`${dir}/${sub.name}`)) {
      files.set(`${sub.name}/${f.name}`, (await Deno.stat(`${dir}/${sub.name}/${f.name}`)).size);
    }
  }
  return files;
}

/** Removes the file floor's stored files (its `tmp` kept: the floor writes there). */
async function clearFloorFiles(dir: string): Promise<void> {
  for await (const sub of Deno.readDir(dir)) {
    if (sub.isDirectory && sub.name !== "tmp") {
      await Deno.remove(`${dir}/${sub.name}`, { recursive: true });
    }
  }
}

/** How many of a burst's stored files have their SHA-256 checked (every size is). */
const HASH_SAMPLE = 20;

/**
 * The file floor's files against the uploads sent to it: one file an accepted upload, each of
 * the size sent, a sample's SHA-256 that of the bytes sent, no other file. Then its files are
 * removed.
 */
async function checkFloorFiles(dir: string, sent: Sent[]): Promise<string> {
  const files = await floorFiles(dir);
  const accepted = sent.filter((s) => s.status === 202 && typeof s.body.datasetId === "string");
  const problems: string[] = [];
  const step = Math.max(1, Math.floor(accepted.length / HASH_SAMPLE));
  for (const [i, s] of accepted.entries()) {
    const id = s.body.datasetId as string;
    const path = `${id.slice(0, 2)}/${id}`;
    const size = files.get(path);
    files.delete(path);
    if (size !== s.size) {
      problems.push(`${id}: ${size ?? "no file"}, ${s.size} bytes sent`);
      continue;
    }
    if (i % step === 0) {
      const sha256 = createHash("sha256").update(await Deno.readFile(`${dir}/${path}`))
        .digest("hex");
      if (sha256 !== s.sha256) problems.push(`${id}: SHA-256 ${sha256}, ${s.sha256} sent`);
    }
  }
  if (files.size) problems.push(`${files.size} files no upload sent`);
  await clearFloorFiles(dir);
  if (accepted.length !== sent.length) {
    problems.push(`${sent.length - accepted.length} of ${sent.length} uploads refused`);
  }
  const hashed = Math.ceil(accepted.length / step);
  return problems.length
    ? problems.slice(0, 3).join("; ") +
      (problems.length > 3 ? ` (${problems.length} problems)` : "")
    : `ok (${accepted.length} files, sizes all, SHA-256 of ${hashed})`;
}

const headers = { "x-api-key": KEY };

/** Every accepted upload read back: its dataset exists and holds the bytes sent. */
async function lost(base: string, sent: Sent[]): Promise<string[]> {
  const problems: string[] = [];
  for (let i = 0; i < sent.length; i += 20) {
    await Promise.all(
      sent.slice(i, i + 20).map(async (s) => {
        const res = await fetch(`${base}/api/v1/datasets/${s.body.datasetId}`, { headers });
        const d = await res.json();
        if (res.status !== 200) problems.push(`${s.body.datasetId}: ${res.status}`);
        else if (d.sizeBytes !== s.size || d.sha256 !== s.sha256) {
          problems.push(`${s.body.datasetId}: ${d.sizeBytes} bytes ${d.sha256}`);
        }
      }),
    );
  }
  return problems;
}

/** Waits until every dataset has ended; returns those not ready with the rows sent. */
async function ingested(
  base: string,
  sent: Sent[],
  rows: number,
  timeoutMs: number,
): Promise<{ seconds: number; bad: string[] }> {
  const t0 = performance.now();
  const bad: string[] = [];
  for (const s of sent) {
    while (true) {
      const d = await (await fetch(`${base}/api/v1/datasets/${s.body.datasetId}`, { headers }))
        .json();
      if (d.status === "ready") {
        if (d.rowCount !== rows) bad.push(`${d.id}: ${d.rowCount} rows, ${rows} sent`);
        break;
      }
      if (d.status === "failed" || d.status === "cancelled") {
        bad.push(`${d.id}: ${d.status} ${JSON.stringify(d.error)}`);
        break;
      }
      if (performance.now() - t0 > timeoutMs) {
        bad.push(`${d.id}: still ${d.status} after ${timeoutMs / 1000} s`);
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return { seconds: (performance.now() - t0) / 1000, bad };
}

interface Scenario {
  name: string;
  count: number;
  mb: number;
  floorBefore: number[];
  troupe: number[];
  floorAfter: number[];
  /** The storage floor's latencies (a table on PostgreSQL, files on PGlite), before and after Troupe's. */
  storeBefore: number[] | null;
  storeAfter: number[] | null;
  /** Bytes the storage floor held against those sent to it. */
  storeCheck: string | null;
  /** CPU seconds of each burst's server and the database's backends. */
  cpu: Record<string, BurstCpu>;
  accepted: number;
  refused: Record<string, number>;
  lost: string[];
  ingest: { seconds: number; bad: string[] } | null;
  load: string;
}

async function runDb(db: "pglite" | "postgres", dir: string): Promise<Scenario[]> {
  const pg = db === "postgres" ? await createPgDatabase() : null;
  const prof = args["cpu-prof"];
  if (prof) await Deno.mkdir(prof, { recursive: true });
  const task = await startTask(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}/${db}`] : []);
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    env: {
      ...task.env,
      PORT: String(port),
      DATA_DIR: `${dir}/data-${db}`,
      LOG_LEVEL: "error",
      DEV_API_KEY: KEY,
      ...UNLIMITED_RATES,
      ...(pg ? { DATABASE_URL: pg.url } : {}),
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const floor = await discardServer(dir);
  const store = pg ? await pgFloorServer(pg.url) : await fsFloorServer(`${dir}/floor-files`);
  const out: Scenario[] = [];
  try {
    await untilUp(`${base}/api/health`, server);
    for (const [count, mb] of [[BIG, 10], [SMALL, 1]] as const) {
      if (count === 0) continue;
      const csv = baseCsv(mb * 1_000_000);
      const name = `${count} × ${mb} MB`;
      const tag = `${db}-${mb}mb`;
      // Warm both (connections, JIT) with a few small uploads first.
      await burst(new URL(`${floor.url}/api/v1/datasets`), baseCsv(10_000), 4, `${tag}-wf`);
      await burst(new URL(`${store.url}/api/v1/datasets`), baseCsv(10_000), 4, `${tag}-ws`);
      if (store.dir !== null) await clearFloorFiles(store.dir);
      const small = baseCsv(10_000);
      const warm = await burst(new URL(`${base}/api/v1/datasets`), small, 4, `${tag}-w`);
      if (warm.some((w) => w.status !== 202)) throw new Error(`warm-up: ${warm[0]!.status}`);
      // The warm-up's datasets ingested first: their jobs (and the workers they start) do not
      // run under the bursts.
      const warmed = await ingested(base, warm, small.rowCount + 1, 60_000);
      if (warmed.bad.length) throw new Error(`warm-up: ${warmed.bad[0]}`);
      const load = loadAverage();
      const stored0 = store.dir === null ? await floorStored(store.url) : null;
      // discard → storage floor → Troupe → storage floor → discard, each with the CPU its
      // server (and the database's backends) spent.
      const dbName = pg ? new URL(pg.url).pathname.slice(1) : null;
      const cpu: Record<string, BurstCpu> = {};
      const timed = async (what: string, pid: number, url: string, t: string) => {
        const from = uptime();
        const fromMs = Date.now();
        const [sent, c] = await withCpu(
          pid,
          dbName,
          () => burst(new URL(`${url}/api/v1/datasets`), csv, count, t),
        );
        cpu[what] = c;
        if (prof && what === "troupe") {
          bursts.push({ db, scenario: name, from, to: uptime(), fromMs, toMs: Date.now() });
          Deno.writeTextFileSync(`${prof}/bursts.json`, JSON.stringify(bursts, null, 2));
        }
        return sent;
      };
      const before = await timed("floorBefore", floor.child.pid, floor.url, `${tag}-f`);
      const storeBefore = await timed("storeBefore", store.child.pid, store.url, `${tag}-s`);
      const sent = await timed("troupe", server.pid, base, tag);
      const storeAfter = await timed("storeAfter", store.child.pid, store.url, `${tag}-t`);
      const after = await timed("floorAfter", floor.child.pid, floor.url, `${tag}-g`);
      let storeCheck: string | null = null;
      if (store.dir !== null) {
        storeCheck = await checkFloorFiles(store.dir, [...storeBefore, ...storeAfter]);
      } else if (stored0) {
        const stored1 = await floorStored(store.url);
        const sentBytes = [...storeBefore, ...storeAfter].filter((s) => s.status === 202)
          .reduce((a, s) => a + s.size, 0);
        const uploads = stored1.uploads - stored0.uploads;
        const bytes = stored1.bytes - stored0.bytes;
        storeCheck = uploads === 2 * count && bytes === sentBytes
          ? "ok"
          : `${uploads} uploads, ${bytes} bytes stored of ${2 * count}, ${sentBytes}`;
      }
      const accepted = sent.filter((s) => s.status === 202 && typeof s.body.datasetId === "string");
      const refused: Record<string, number> = {};
      for (const s of sent) {
        if (s.status !== 202) {
          const code = `${s.status} ${(s.body.error as { code?: string })?.code ?? ""}`;
          refused[code] = (refused[code] ?? 0) + 1;
        }
      }
      const missing = await lost(base, accepted);
      const ingest = QUICK ? null : await ingested(base, accepted, csv.rowCount + 1, 240_000);
      const s: Scenario = {
        name,
        count,
        mb,
        floorBefore: before.map((x) => x.ms),
        troupe: sent.map((x) => x.ms),
        floorAfter: after.map((x) => x.ms),
        storeBefore: storeBefore?.map((x) => x.ms) ?? null,
        storeAfter: storeAfter?.map((x) => x.ms) ?? null,
        storeCheck,
        cpu,
        accepted: accepted.length,
        refused,
        lost: missing,
        ingest,
        load,
      };
      out.push(s);
      print(db, s);
    }
  } finally {
    // A server that ended before the bench stops it is said (the requests then failed).
    const children = [["Troupe", server], ["floor", floor.child]] as [string, Deno.ChildProcess][];
    children.push(["storage floor", store.child]);
    for (const [what, child] of children) {
      const st = await Promise.race([child.status, new Promise((r) => setTimeout(r, 200, null))]);
      if (st) {
        const { code, signal } = st as Deno.CommandStatus;
        console.error(`the ${what} server had ended: code ${code}, signal ${signal ?? "none"}`);
      }
    }
    for (const child of [floor.child, store.child, server]) {
      try {
        Deno.kill(child.pid, "SIGTERM");
      } catch { /* exited */ }
      await child.status;
    }
    await pg?.drop();
  }
  return out;
}

const f0 = (x: number) => x.toFixed(0);

function print(db: string, s: Scenario): void {
  const floorP99 = (pct(s.floorBefore, 0.99) + pct(s.floorAfter, 0.99)) / 2;
  const p99 = pct(s.troupe, 0.99);
  console.log(
    `${db.padEnd(8)} ${s.name.padEnd(11)} Troupe p50/p99 ${f0(pct(s.troupe, 0.5))} / ${
      f0(p99)
    } ms | floor p50/p99 before ${f0(pct(s.floorBefore, 0.5))} / ${
      f0(pct(s.floorBefore, 0.99))
    }, after ${f0(pct(s.floorAfter, 0.5))} / ${f0(pct(s.floorAfter, 0.99))} ms | p99 ratio ${
      (p99 / floorP99).toFixed(2)
    }× | accepted ${s.accepted}/${s.count}${
      Object.keys(s.refused).length ? ` refused ${JSON.stringify(s.refused)}` : ""
    }${storeRatio(s, p99)} | lost ${s.lost.length}${
      s.lost.length ? ` (${s.lost.slice(0, 3).join("; ")})` : ""
    }${
      s.ingest
        ? ` | all ingested in ${s.ingest.seconds.toFixed(1)} s, ${s.ingest.bad.length} bad${
          s.ingest.bad.length ? ` (${s.ingest.bad.slice(0, 3).join("; ")})` : ""
        }`
        : ""
    } | load ${s.load}`,
  );
  const c = (k: string) => {
    const x = s.cpu[k];
    if (!x) return "";
    return `${x.server.toFixed(2)}${x.backends === null ? "" : ` + ${x.backends.toFixed(2)}`}`;
  };
  console.log(
    `${"".padEnd(8)} ${s.name.padEnd(11)} CPU s, server${
      s.cpu.troupe?.backends != null ? " + its database's backends" : ""
    }: Troupe ${c("troupe")} | discard floor ${c("floorBefore")}, ${c("floorAfter")}${
      s.storeBefore ? ` | storage floor ${c("storeBefore")}, ${c("storeAfter")}` : ""
    }`,
  );
}

/** The storage floor's p99s and Troupe's p99 over their mean, and the storage floor's over the discard floor's. */
function storeRatio(s: Scenario, p99: number): string {
  if (!s.storeBefore || !s.storeAfter) return "";
  const floorP99 = (pct(s.floorBefore, 0.99) + pct(s.floorAfter, 0.99)) / 2;
  const storeP99 = (pct(s.storeBefore, 0.99) + pct(s.storeAfter, 0.99)) / 2;
  return ` | storage floor p50/p99 before ${f0(pct(s.storeBefore, 0.5))} / ${
    f0(pct(s.storeBefore, 0.99))
  }, after ${f0(pct(s.storeAfter, 0.5))} / ${f0(pct(s.storeAfter, 0.99))} ms (${
    (storeP99 / floorP99).toFixed(2)
  }× the discard floor; stored ${s.storeCheck}) | p99 ratio to the storage floor ${
    (p99 / storeP99).toFixed(2)
  }×`;
}

const dir = await Deno.makeTempDir({ prefix: "troupe-bench-uploads-" });
const results: Record<string, Scenario[]> = {};
try {
  for (const db of args.db.split(",") as ("pglite" | "postgres")[]) {
    results[db] = await runDb(db, dir);
  }
} finally {
  agent.destroy();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), client: "node:http", results }, null, 2),
);
