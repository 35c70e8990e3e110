/**
 * Usage queries at scale: 1,000,000 snapshots in one tenant on the PostgreSQL server (a
 * scratch database, dropped at the end), then the latency of the usage endpoints through the
 * HTTP app served on 127.0.0.1 — target p99 < 50 ms:
 * - the first 10 pages (offset, 20 rows) of `/api/v1/usage` in the default sort and in each
 *   `sortBy` both ways, and 10 pages by keyset cursor;
 * - `/api/v1/usage/daily`, the first 10 pages of `/api/v1/usage/reports`,
 *   `/api/v1/usage/forecast` (a past and the current month);
 * - then the time a change of the tenant's time zone takes (every snapshot re-dayed, the daily
 *   figures rebuilt, in one transaction).
 *
 * The snapshots are written by one INSERT ... SELECT (2 sources, 1,000 reports, 90 days), and
 * the daily and per-report aggregates by one INSERT ... SELECT each from them: the figures
 * recordUsage would keep. Each series runs 30 rounds after one warm-up round (300 requests:
 * the p99 is the 297th). The load average of the machine is printed with the figures: on a
 * shared machine the tail is the scheduler's.
 *
 *   deno run -A bench/usage_queries.ts [--snapshots 1000000] [--rounds 10]
 */
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { openPostgres } from "@troupe/runtime/postgres";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { migrate } from "../db/migrate.ts";
import { TenantStore } from "../db/tenants.ts";
import { createApp } from "../routes/app.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { loadAverage, median, pct } from "./stats.ts";

const arg = (name: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const SNAPSHOTS = Number(arg("snapshots") ?? 1_000_000);
const ROUNDS = Number(arg("rounds") ?? 30);
const DAYS = 90;

const database = await createPgDatabase();
const db = openPostgres(database.url, { max: 10 });
let server: Deno.HttpServer | null = null;
try {
  await migrate(db);
  const tenants = new TenantStore(db);
  const tenant = await tenants.createTenant("bench");
  const { key } = await tenants.createKey(tenant.id);
  const t0 = performance.now();
  const step = (DAYS * 86_400) / SNAPSHOTS;
  for (let from = 0; from < SNAPSHOTS; from += 100_000) {
    await db.query(
      `INSERT INTO troupe_usage_snapshots
         (tenant_id, source_id, message_id, ts, day, credits_cents, report_id, report_name, seq)
       SELECT $1, 'src-' || (g % 2), 'm' || g, t.ts, (t.ts AT TIME ZONE 'UTC')::date,
              (g::bigint * 7919) % 10000,
              CASE WHEN g % 50 = 0 THEN NULL ELSE 'r' || (g % 1000) END,
              CASE WHEN g % 50 = 0 THEN NULL ELSE 'Report ' || (g % 1000) END,
              nextval('troupe_usage_seq')
         FROM generate_series($2::int, $3::int) g,
              LATERAL (SELECT timestamptz '2026-09-01T00:00:00Z'
                              + make_interval(secs => g * $4::float8) AS ts) t`,
      [tenant.id, from + 1, Math.min(SNAPSHOTS, from + 100_000), step],
    );
  }
  await db.query(
    `INSERT INTO troupe_usage_daily (tenant_id, source_id, day, credits_cents, messages)
     SELECT tenant_id, source_id, day, sum(credits_cents), count(*)
       FROM troupe_usage_snapshots WHERE tenant_id = $1 GROUP BY 1, 2, 3`,
    [tenant.id],
  );
  await db.query(
    `INSERT INTO troupe_usage_report_totals
       (tenant_id, source_id, report_key, report_name, credits_cents, messages)
     SELECT tenant_id, source_id, coalesce(report_id, ''), max(report_name),
            sum(credits_cents), count(*)
       FROM troupe_usage_snapshots WHERE tenant_id = $1 GROUP BY 1, 2, 3`,
    [tenant.id],
  );
  await db.query("VACUUM ANALYZE troupe_usage_snapshots");
  await db.query("VACUUM ANALYZE troupe_usage_daily");
  await db.query("VACUUM ANALYZE troupe_usage_report_totals");
  const loadS = (performance.now() - t0) / 1000;
  console.log(`${SNAPSHOTS} snapshots and their aggregates written in ${loadS.toFixed(1)} s`);

  // The app's statements are timed: their sum per request tells the database's share of a
  // request from the scheduler's (the key lookup goes through `tenants`, untimed).
  let sqlMs = 0;
  const timed = new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "query") return typeof value === "function" ? value.bind(target) : value;
      return async (...args: Parameters<typeof db.query>) => {
        const t = performance.now();
        try {
          return await target.query(...args);
        } finally {
          sqlMs += performance.now() - t;
        }
      };
    },
  });
  const sqlSamples: number[] = [];
  const runtime = new Runtime({
    db: timed,
    actors: [],
    transport: new TableQueueTransport(db),
    logger: jsonLogger("silent"),
  });
  const app = createApp({
    runtime,
    limiter: new MemoryRateLimiter(),
    tenants,
    logger: jsonLogger("silent"),
    perKeyPerMinute: 10_000_000,
  });
  server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const base = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/api/v1`;
  const get = async (path: string) => {
    const t = performance.now();
    sqlMs = 0;
    const res = await fetch(`${base}${path}`, { headers: { "x-api-key": key } });
    const body = await res.json();
    const ms = performance.now() - t;
    sqlSamples.push(sqlMs);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
    return { ms, body };
  };

  /** One series: `paths()` per round, one warm-up round. */
  const series: { name: string; paths: () => Promise<number[]> }[] = [];
  const pages = (query: string) => async () => {
    const out: number[] = [];
    for (let p = 1; p <= 10; p++) out.push((await get(`${query}&page=${p}`)).ms);
    return out;
  };
  series.push({ name: "usage default (timestamp desc)", paths: pages("/usage?pageSize=20") });
  for (const sortBy of ["timestamp", "credits_used", "report_name"]) {
    for (const order of ["asc", "desc"]) {
      series.push({
        name: `usage sortBy=${sortBy} ${order}`,
        paths: pages(`/usage?sortBy=${sortBy}&sortOrder=${order}`),
      });
    }
  }
  series.push({
    name: "usage keyset cursor (10 pages)",
    paths: async () => {
      const out: number[] = [];
      let cursor = "";
      for (let p = 0; p < 10; p++) {
        const { ms, body } = await get(`/usage?sortBy=credits_used${cursor}`);
        out.push(ms);
        cursor = `&cursor=${body.nextCursor}`;
      }
      return out;
    },
  });
  series.push({
    name: "usage from/to instants + sourceId",
    paths: pages("/usage?from=2026-10-01T12:34:56Z&to=2026-11-15T06:00:00Z&sourceId=src-1"),
  });
  series.push({ name: "usage reportId", paths: pages("/usage?reportId=r123") });
  series.push({
    name: "usage/daily (all 90 days)",
    paths: async () => {
      const out: number[] = [];
      for (let i = 0; i < 10; i++) out.push((await get("/usage/daily")).ms);
      return out;
    },
  });
  series.push({ name: "usage/reports", paths: pages("/usage/reports?pageSize=20") });
  series.push({
    name: "usage/forecast (past, current month)",
    paths: async () => {
      const out: number[] = [];
      for (let i = 0; i < 5; i++) {
        out.push((await get("/usage/forecast?month=2026-11")).ms);
        out.push((await get(`/usage/forecast?month=${new Date().toISOString().slice(0, 7)}`)).ms);
      }
      return out;
    },
  });

  console.log(`load average before: ${loadAverage()} (${navigator.hardwareConcurrency} cores)`);
  console.log(`\n| series | requests | p50 ms | p99 ms | max ms | SQL p50 ms | SQL p99 ms |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|`);
  let worst = 0;
  for (const s of series) {
    await s.paths(); // warm-up
    sqlSamples.length = 0;
    const all: number[] = [];
    for (let r = 0; r < ROUNDS; r++) all.push(...await s.paths());
    const p99 = pct(all, 0.99);
    worst = Math.max(worst, p99);
    console.log(
      `| ${s.name} | ${all.length} | ${median(all).toFixed(1)} | ${p99.toFixed(1)} | ${
        Math.max(...all).toFixed(1)
      } | ${median(sqlSamples).toFixed(1)} | ${pct(sqlSamples, 0.99).toFixed(1)} |`,
    );
  }
  console.log(
    `\nworst p99: ${worst.toFixed(1)} ms (target < 50 ms); load average: ${loadAverage()}`,
  );

  // A new time zone re-days every snapshot and rebuilds the daily figures in one transaction.
  const tz = performance.now();
  const res = await fetch(`${base}/tenant`, {
    method: "PATCH",
    headers: { "x-api-key": key, "content-type": "application/json" },
    body: JSON.stringify({ timeZone: "Europe/Paris" }),
  });
  if (res.status !== 200) throw new Error(`PATCH /tenant: ${res.status} ${await res.text()}`);
  await res.body?.cancel();
  const zoneS = (performance.now() - tz) / 1000;
  const daily = (await get("/usage/daily")).body as { days: { messages: number }[] };
  const counted = daily.days.reduce((n, d) => n + d.messages, 0);
  if (counted !== SNAPSHOTS) throw new Error(`${counted} messages in the rebuilt days`);
  console.log(
    `time zone change (re-day ${SNAPSHOTS} snapshots, rebuild ${daily.days.length} days): ` +
      `${zoneS.toFixed(1)} s`,
  );
} finally {
  await server?.shutdown();
  await db.close();
  await database.drop();
}
