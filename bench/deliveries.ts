/**
 * How long one delivery runs, and how long the event loop waits, while the embedded server
 * (main.ts's `compose`: PGlite, the table queue, files under a temporary DATA_DIR) builds a
 * course and ingests a CSV and a JSON array, with a delivery budget (`DELIVERY_BUDGET_MS`):
 * each actor's deliveries, longest and total handler time (the runtime's observer), and the
 * event loop's lag (a 10 ms `setInterval` whose drift is sampled: max and p99) while each runs.
 * Figures, not asserts.
 *
 *   deno run -A bench/deliveries.ts [--budgets 30000,0] [--pages 400] [--mb 40] [--pdf FILE.pdf]
 *     [--only course,csv,json] [--db pglite,postgres]
 *
 * Writes the figures to `--json` (default `bench/results/deliveries.json`). `--db postgres` runs
 * the same on the local PostgreSQL (a fresh database each run, files still under DATA_DIR):
 * PGlite runs its statements on the main thread, PostgreSQL does not.
 *
 * The course is a generated book (`--pages` pages, chapters of sections with an outline) unless
 * `--pdf` names a real one; the datasets are generated (`--mb` MB each, mixed columns).
 */
import { parseArgs } from "node:util";
import type { RuntimeObserver } from "@troupe/runtime";
import { loadConfig } from "../deploy/config.ts";
import { compose, type Composed } from "../main.ts";
import { makePdf, sentences } from "../tests/fixtures/pdfs.ts";
import { pct } from "./stats.ts";
import { createPgDatabase } from "../tests/harness.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    budgets: { type: "string", default: "30000,0" },
    pages: { type: "string", default: "400" },
    mb: { type: "string", default: "40" },
    pdf: { type: "string" },
    only: { type: "string", default: "course,csv,json" },
    db: { type: "string", default: "pglite" },
    json: { type: "string", default: "bench/results/deliveries.json" },
  },
});
const KEY = "troupe-bench-key-0123456789abcdef";
const headers = { "x-api-key": KEY };

/** A book: chapters of 20 pages, a section every 2 pages, each page ~300 words. */
async function book(pages: number): Promise<Uint8Array> {
  const out = [];
  const outline = [];
  for (let p = 0; p < pages; p++) {
    const ch = Math.floor(p / 20) + 1;
    const sec = Math.floor((p % 20) / 2) + 1;
    const first = p % 2 === 0;
    if (p % 20 === 0) outline.push({ title: `${ch} Chapter ${ch}`, page: p + 1, children: [] });
    if (first) {
      (outline.at(-1)!.children as { title: string; page: number }[]).push({
        title: `${ch}.${sec} Section ${ch}.${sec}`,
        page: p + 1,
      });
    }
    out.push({
      ...(first ? { subheading: `${ch}.${sec} Section ${ch}.${sec}` } : {}),
      paragraphs: [sentences(`w${ch}x${sec}x${p % 2}`, 18)],
    });
  }
  return await makePdf(out, { outline });
}

/** A CSV of ~`mb` MB (ids, ints, floats with gaps, categories, dates, text with commas). */
function csv(mb: number): string {
  const rows = ["id,user,amount,city,day,note"];
  let size = 0;
  for (let i = 0; size < mb * 1e6; i++) {
    const row = `${i},u${(i * 7919) % 50_000},${i % 50 === 0 ? "" : ((i * 37) % 1000) + 0.25},${
      ["Paris", "Lyon", "Köln", "Oslo"][i % 4]
    },2024-${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + (i % 28)).padStart(2, "0")},${
      i % 10 === 0 ? `"note, ${i}"` : `note ${i % 997}`
    }`;
    rows.push(row);
    size += row.length + 1;
  }
  return rows.join("\n") + "\n";
}

/** The same kind of rows as a JSON array of objects. */
function jsonArray(mb: number): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < mb * 1e6; i++) {
    const row = JSON.stringify({
      id: i,
      user: `u${(i * 7919) % 50_000}`,
      amount: i % 50 === 0 ? null : ((i * 37) % 1000) + 0.25,
      city: ["Paris", "Lyon", "Köln", "Oslo"][i % 4],
      day: `2024-${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + (i % 28)).padStart(2, "0")}`,
    });
    parts.push(row);
    size += row.length + 2;
  }
  return "[\n" + parts.join(",\n") + "\n]\n";
}

/** The event loop's lag: how late a 10 ms interval fires, sampled while `stop` is not called. */
function lagProbe(): { stop(): { max: number; p99: number; samples: number } } {
  const every = 10;
  const lags: number[] = [];
  let expected = performance.now() + every;
  const id = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - expected));
    expected = now + every;
  }, every);
  return {
    stop() {
      clearInterval(id);
      return {
        max: Math.max(0, ...lags),
        p99: lags.length ? pct(lags, 0.99) : 0,
        samples: lags.length,
      };
    },
  };
}

/** Deliveries by actor: count, longest and total handler time. */
class Deliveries implements RuntimeObserver {
  readonly by = new Map<string, { n: number; max: number; total: number }>();
  jobFinished(actor: string, _outcome: unknown, ms: number): void {
    const d = this.by.get(actor) ?? { n: 0, max: 0, total: 0 };
    d.n++;
    d.max = Math.max(d.max, ms);
    d.total += ms;
    this.by.set(actor, d);
  }
  deadLettered(): void {}
  heartbeat(): void {}
}

async function until<T>(read: () => Promise<T | null>, timeoutMs = 30 * 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function courseRun(troupe: Composed, pdf: Uint8Array): Promise<string> {
  const form = new FormData();
  form.append("files", new File([new Uint8Array(pdf)], "book.pdf", { type: "application/pdf" }));
  const res = await troupe.app.request("/api/courses", { method: "POST", headers, body: form });
  if (res.status !== 202) throw new Error(`upload: ${res.status} ${await res.text()}`);
  const { courseId } = await res.json();
  return await until(async () => {
    const c = await (await troupe.app.request(`/api/courses/${courseId}`, { headers })).json();
    if (c.status === "processing") return null;
    const lessons = c.modules.reduce(
      (n: number, m: { lessons: unknown[] }) => n + m.lessons.length,
      0,
    );
    return `${c.status}, ${c.modules.length} modules, ${lessons} lessons`;
  });
}

async function datasetRun(troupe: Composed, body: string, format: string): Promise<string> {
  const res = await troupe.app.request(`/api/datasets?format=${format}&name=bench`, {
    method: "POST",
    headers: { ...headers, "content-type": format === "csv" ? "text/csv" : "application/json" },
    body,
  });
  if (res.status !== 202) throw new Error(`upload: ${res.status} ${await res.text()}`);
  const { datasetId } = await res.json();
  return await until(async () => {
    const d = await (await troupe.app.request(`/api/datasets/${datasetId}`, { headers })).json();
    if (d.status !== "ready" && d.status !== "failed") return null;
    return `${d.status}, ${d.rowCount} rows, ${d.progress.chunksTotal} chunks`;
  });
}

const pages = Number(args.pages);
const mb = Number(args.mb);
const pdf = args.pdf ? await Deno.readFile(args.pdf) : await book(pages);
const files = { csv: csv(mb), json: jsonArray(mb) };
const label = args.pdf ? args.pdf.split("/").at(-1)! : `generated book, ${pages} pages`;
/** Each scenario's name, run, `--only` name and last actor (whose commit ends it). */
const scenarios: [string, (t: Composed) => Promise<string>, string, string][] = [
  [`course (${label})`, (t) => courseRun(t, pdf), "course", "course.build"],
  [
    `CSV, ${(files.csv.length / 1e6).toFixed(0)} MB`,
    (t) => datasetRun(t, files.csv, "csv"),
    "csv",
    "dataset.merge",
  ],
  [
    `JSON array, ${(files.json.length / 1e6).toFixed(0)} MB`,
    (t) => datasetRun(t, files.json, "json"),
    "json",
    "dataset.merge",
  ],
];

const only = new Set(args.only.split(","));
const results: Record<string, unknown>[] = [];
for (const db of args.db.split(",")) {
  for (const budget of args.budgets.split(",").map(Number)) {
    console.log(`\n## ${db}, DELIVERY_BUDGET_MS=${budget}${budget === 0 ? " (none)" : ""}\n`);
    for (const [name, run, kind, last] of scenarios) {
      if (!only.has(kind)) continue;
      const dir = await Deno.makeTempDir({ prefix: "troupe-bench-deliveries-" });
      const pg = db === "postgres" ? await createPgDatabase() : null;
      const deliveries = new Deliveries();
      const troupe = await compose(
        loadConfig({
          DATA_DIR: dir,
          LOG_LEVEL: "silent",
          DEV_API_KEY: KEY,
          RATE_LIMIT_PER_IP: "1000000",
          RATE_LIMIT_PER_KEY: "1000000",
          DELIVERY_BUDGET_MS: String(budget),
          ...(pg ? { DATABASE_URL: pg.url, BLOB_STORE: "fs" } : {}),
        }),
        [],
        { observer: deliveries },
      );
      try {
        const probe = lagProbe();
        const t0 = performance.now();
        const outcome = await run(troupe);
        const wall = performance.now() - t0;
        const lag = probe.stop();
        // The observer hears of a commit once it resolved: the poll may see its effects first.
        await until(() => Promise.resolve(deliveries.by.has(last) ? true : null), 10_000);
        await new Promise((r) => setTimeout(r, 300));
        console.log(
          `${name}: ${outcome} in ${(wall / 1000).toFixed(1)} s; event loop lag max ${
            lag.max.toFixed(0)
          } ms, p99 ${lag.p99.toFixed(0)} ms (${lag.samples} samples)`,
        );
        console.log("| actor | deliveries | longest (ms) | total (ms) |");
        console.log("| --- | --- | --- | --- |");
        for (const [actor, d] of [...deliveries.by].sort((a, b) => b[1].max - a[1].max)) {
          if (!actor.startsWith("course.") && !actor.startsWith("dataset.")) continue;
          console.log(`| ${actor} | ${d.n} | ${d.max.toFixed(0)} | ${d.total.toFixed(0)} |`);
        }
        console.log("");
        results.push({
          db,
          budgetMs: budget,
          scenario: name,
          outcome,
          wallMs: Math.round(wall),
          lag: { maxMs: Math.round(lag.max), p99Ms: Math.round(lag.p99), samples: lag.samples },
          deliveries: Object.fromEntries(
            [...deliveries.by].map(([actor, d]) => [actor, {
              count: d.n,
              longestMs: Math.round(d.max),
              totalMs: Math.round(d.total),
            }]),
          ),
        });
      } finally {
        await troupe.close();
        await pg?.drop();
        await Deno.remove(dir, { recursive: true });
      }
    }
  }
}
await Deno.writeTextFile(
  args.json,
  JSON.stringify({ at: new Date().toISOString(), results }, null, 2),
);
