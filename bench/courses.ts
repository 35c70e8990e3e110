/**
 * The course workload against the source system's targets (upload < 500 ms, status < 100 ms,
 * course list < 200 ms, chat < 1 s), through the real server (main.ts in its own process):
 * upload latency of a generated 40-page PDF, time until the course is ready, then status,
 * list and ask latencies (50 concurrent clients for status, with wrk).
 *
 *   deno run -A bench/courses.ts [--db pglite,postgres] [--uploads 10]
 */
import { parseArgs } from "node:util";
import { createPgDatabase } from "../tests/harness.ts";
import { makePdf, sentences } from "../tests/fixtures/pdfs.ts";
import { freePort, startTask, UNLIMITED_RATES, untilUp } from "../tests/start_task.ts";
import { pct } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    db: { type: "string", default: "pglite,postgres" },
    uploads: { type: "string", default: "10" },
    json: { type: "string", default: "bench/results/courses.json" },
  },
});
const KEY = "troupe-bench-key-0123456789abcdef";
const headers = { "x-api-key": KEY };

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

async function pdf(seed: number): Promise<Uint8Array> {
  const pages = [];
  for (let ch = 0; ch < 4; ch++) {
    pages.push({ heading: `Chapter ${ch + 1}`, paragraphs: [sentences(`c${seed}x${ch}`, 12)] });
    for (let s = 0; s < 9; s++) {
      pages.push({
        subheading: `Section ${ch + 1}.${s + 1}`,
        paragraphs: [sentences(`s${seed}x${ch}x${s}`, 14)],
      });
    }
  }
  return await makePdf(pages, {
    outline: [0, 1, 2, 3].map((ch) => ({
      title: `Chapter ${ch + 1}`,
      page: ch * 10 + 1,
      children: Array.from(
        { length: 9 },
        (_, s) => ({ title: `Section ${ch + 1}.${s + 1}`, page: ch * 10 + s + 2 }),
      ),
    })),
  });
}

async function wrkStatus(base: string, path: string): Promise<{ rps: number; p99: number }> {
  const out = await new Deno.Command("wrk", {
    args: ["-t2", "-c50", "-d5s", "--latency", "-H", `x-api-key: ${KEY}`, `${base}${path}`],
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const p99 = /\n\s+99%\s+([\d.]+)(us|ms|s)/.exec(text);
  const ms = p99 ? Number(p99[1]) * (p99[2] === "us" ? 0.001 : p99[2] === "s" ? 1000 : 1) : NaN;
  return { rps, p99: ms };
}

async function measure(db: string) {
  const dir = await Deno.makeTempDir({ prefix: "troupe-bench-courses-" });
  const pg = db === "postgres" ? await createPgDatabase() : null;
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  const task = await startTask();
  const server = new Deno.Command(Deno.execPath(), {
    args: task.args,
    env: {
      ...task.env,
      PORT: String(port),
      DATA_DIR: dir,
      LOG_LEVEL: "error",
      DEV_API_KEY: KEY,
      ...UNLIMITED_RATES,
      ...(pg ? { DATABASE_URL: pg.url } : {}),
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await untilUp(`${base}/api/health`, server);
    const uploads: number[] = [];
    const ready: number[] = [];
    const ids: string[] = [];
    const statuses: string[] = [];
    for (let i = 0; i < Number(args.uploads); i++) {
      const form = new FormData();
      form.append("title", `Course ${i}`);
      form.append("files", new File([new Uint8Array(await pdf(i))], `book-${i}.pdf`));
      const t0 = performance.now();
      const [ms, res] = await timed(() =>
        fetch(`${base}/api/courses`, { method: "POST", headers, body: form })
      );
      const { courseId } = await res.json();
      uploads.push(ms);
      ids.push(courseId);
      while (true) {
        const c = await (await fetch(`${base}/api/courses/${courseId}`, { headers })).json();
        if (c.status !== "processing") {
          statuses.push(c.status);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      ready.push(performance.now() - t0);
    }
    const status: number[] = [];
    const list: number[] = [];
    const ask: number[] = [];
    for (let i = 0; i < 50; i++) {
      const id = ids[i % ids.length]!;
      status.push(
        (await timed(async () =>
          await (await fetch(`${base}/api/courses/${id}`, { headers })).json()
        ))[0],
      );
      list.push(
        (await timed(async () =>
          await (await fetch(`${base}/api/courses?limit=20`, { headers })).json()
        ))[0],
      );
      ask.push(
        (await timed(async () =>
          await (await fetch(`${base}/api/courses/${id}/ask`, {
            method: "POST",
            headers: { ...headers, "content-type": "application/json" },
            body: JSON.stringify({
              question: `What does the method of s${i % ids.length}x1x3 number 4 show?`,
            }),
          })).json()
        ))[0],
      );
    }
    const loaded = await wrkStatus(base, `/api/courses/${ids[0]}`);
    if (statuses.some((x) => x !== "ready")) throw new Error(`courses not ready: ${statuses}`);
    return { db, uploads, ready, status, list, ask, loaded };
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* exited */ }
    await server.status;
    await pg?.drop();
    await Deno.remove(dir, { recursive: true });
  }
}

const results = [];
for (const db of args.db.split(",").map((s) => s.trim()).filter(Boolean)) {
  results.push(await measure(db));
}
const f = (x: number) => x.toFixed(1);
console.log(
  `\n40-page PDFs with an outline, ${args.uploads} courses per database (Deno ${Deno.version.deno})\n`,
);
console.log(
  "| database | upload p50/p99 ms (< 500) | PDF ready p50 s | status p50/p99 ms (< 100) | status under 50 clients req/s, p99 ms | list p50/p99 ms (< 200) | ask p50/p99 ms (< 1000) |",
);
console.log("|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.db} | ${f(pct(r.uploads, 0.5))} / ${f(pct(r.uploads, 0.99))} | ${
      (pct(r.ready, 0.5) / 1000).toFixed(2)
    } | ${f(pct(r.status, 0.5))} / ${f(pct(r.status, 0.99))} | ${Math.round(r.loaded.rps)}, ${
      f(r.loaded.p99)
    } | ${f(pct(r.list, 0.5))} / ${f(pct(r.list, 0.99))} | ${f(pct(r.ask, 0.5))} / ${
      f(pct(r.ask, 0.99))
    } |`,
  );
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), results }, null, 2),
);
