/**
 * A report sync against the usage API stand-in (50 ms a call, 100 messages a page, messages
 * referring to `--reports` reports): Troupe's sync (pages as actor messages, report ids
 * deduplicated per page and fetched with bounded concurrency, cached, a page's rows in one
 * statement) against the sync as the source system wrote it (fetch a page, fetch each
 * message's report one by one with no cache, insert row by row), on the same PostgreSQL
 * database in the same run. Each side runs in its own process (its peak RSS is its own); the
 * stand-in runs in a third.
 *
 *   deno run -A bench/usage_sync.ts [--messages 100000] [--baseline-messages 2000]
 *     [--reports 1000] [--latency 50] [--concurrency 8]
 *
 * The baseline makes one call a message, so at 50 ms a call 100,000 messages take it about
 * 85 minutes: `--baseline-messages` syncs the first N messages of the same data instead (its
 * rate per message does not depend on N: every page costs the same).
 */
import { parseArgs } from "node:util";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { EgressPolicy } from "../actors/net/egress.ts";
import { usageActors } from "../actors/usage/actors.ts";
import { SourceStore } from "../actors/usage/sources.ts";
import { startSync, type UsageDeps } from "../actors/usage/sync.ts";
import { Cache } from "../db/cache/cache.ts";
import { MemoryCacheStore } from "../db/cache/memory.ts";
import { migrate } from "../db/migrate.ts";
import { openPostgres } from "@troupe/runtime/postgres";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { generateKeyText, parseKeys, SecretBox } from "../db/secrets.ts";
import { TenantStore } from "../db/tenants.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { peakRssMb } from "./rss.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "100000" },
    "baseline-messages": { type: "string", default: "2000" },
    reports: { type: "string", default: "1000" },
    latency: { type: "string", default: "50" },
    concurrency: { type: "string", default: "8" },
    side: { type: "string" },
    db: { type: "string" },
    api: { type: "string" },
    limit: { type: "string" },
  },
});
const TOKEN = "bench-token";
const PAGE = 100;

interface SideResult {
  side: string;
  messages: number;
  seconds: number;
  calls: number;
  peakRssMb: number;
}

/** Troupe: the sync as the runtime runs it, until its history row says it ended. */
async function troupe(dbUrl: string, apiUrl: string, limit: number): Promise<SideResult> {
  const db = openPostgres(dbUrl, { max: 10 });
  const sources = new SourceStore(
    db,
    new SecretBox(parseKeys(generateKeyText("bench"))),
    new EgressPolicy({ allow: ["127.0.0.1"] }),
  );
  const ref: { runtime?: Runtime } = {};
  const deps: UsageDeps = {
    db,
    sources,
    limiter: new MemoryRateLimiter(),
    cache: new Cache(new MemoryCacheStore()),
    runtime: () => ref.runtime!,
  };
  const runtime = ref.runtime = new Runtime({
    db,
    actors: usageActors(deps),
    transport: new TableQueueTransport(db, { pollMs: 50 }),
    logger: jsonLogger("warn"),
  });
  await runtime.start();
  const tenant = await new TenantStore(db).createTenant(`bench-${crypto.randomUUID()}`);
  const source = await sources.create(tenant.id, {
    name: "bench",
    baseUrl: apiUrl,
    token: TOKEN,
    pageSize: PAGE,
    concurrency: Number(args.concurrency),
    requestsPerMinute: 100_000,
    schedule: "30",
  });
  const began = performance.now();
  const { jobId } = await startSync(deps, {
    tenantId: tenant.id,
    sourceId: source.id,
    trigger: "manual",
  });
  let row: { status: string; messages_new: number; calls: number } | undefined;
  while (true) {
    [row] = await db.query<{ status: string; messages_new: number; calls: number }>(
      "SELECT status, messages_new, calls FROM troupe_usage_syncs WHERE id = $1",
      [jobId],
    );
    if (row && row.status !== "running") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const seconds = (performance.now() - began) / 1000;
  if (row!.status !== "succeeded") throw new Error(`the sync ended ${row!.status}`);
  await runtime.stop();
  await db.close();
  void limit;
  return {
    side: "troupe",
    messages: row!.messages_new,
    seconds,
    calls: row!.calls,
    peakRssMb: await peakRssMb(Deno.pid),
  };
}

/** The source system's sync: a page, each message's report one call at a time, row by row. */
async function baseline(dbUrl: string, apiUrl: string, limit: number): Promise<SideResult> {
  const db = openPostgres(dbUrl, { max: 2 });
  await db.query(
    `CREATE TABLE IF NOT EXISTS bench_baseline_usage (
       message_id text PRIMARY KEY, ts timestamptz NOT NULL, credits numeric NOT NULL,
       report_id text, report_name text)`,
  );
  const headers = { authorization: `Bearer ${TOKEN}` };
  let calls = 0;
  let messages = 0;
  let cursor: string | null = null;
  const began = performance.now();
  while (messages < limit) {
    const url = new URL(`${apiUrl}/usage`);
    url.searchParams.set("limit", String(PAGE));
    if (cursor) url.searchParams.set("cursor", cursor);
    calls++;
    const page = await (await fetch(url, { headers })).json() as {
      messages: { id: number; timestamp: string; credits_used: number; report_id: number | null }[];
      next_cursor: string | null;
    };
    for (const m of page.messages) {
      let name: string | null = null;
      if (m.report_id !== null) {
        calls++;
        const res = await fetch(`${apiUrl}/reports/${m.report_id}`, { headers });
        name = res.ok ? ((await res.json()) as { name: string }).name : null;
        if (!res.ok) await res.body?.cancel();
      }
      await db.query(
        `INSERT INTO bench_baseline_usage (message_id, ts, credits, report_id, report_name)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING`,
        [String(m.id), m.timestamp, m.credits_used, m.report_id, name],
      );
      messages++;
    }
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  const seconds = (performance.now() - began) / 1000;
  await db.close();
  return { side: "baseline", messages, seconds, calls, peakRssMb: await peakRssMb(Deno.pid) };
}

async function runSide(side: string, dbUrl: string, apiUrl: string, limit: number) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      import.meta.filename!,
      "--side",
      side,
      "--db",
      dbUrl,
      "--api",
      apiUrl,
      "--limit",
      String(limit),
      "--concurrency",
      args.concurrency!,
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`the ${side} side failed`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines.at(-1)!) as SideResult;
}

async function startApi(messages: number): Promise<{ url: string; stop(): Promise<void> }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../tests/fixtures/usage_api.ts", import.meta.url).pathname,
      "--port",
      String(port),
      "--messages",
      String(messages),
      "--reports",
      args.reports!,
      "--latency",
      args.latency!,
      "--token",
      TOKEN,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("stand-in on")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the stand-in did not start");
    seen += value;
  }
  reader.releaseLock();
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

if (import.meta.main) {
  if (args.side) {
    const run = args.side === "troupe" ? troupe : baseline;
    console.log(JSON.stringify(await run(args.db!, args.api!, Number(args.limit))));
    Deno.exit(0);
  }
  const total = Number(args.messages);
  const baselineLimit = Math.min(total, Number(args["baseline-messages"]));
  const { url: dbUrl, drop } = await createPgDatabase();
  const setup = openPostgres(dbUrl, { max: 1 });
  await migrate(setup);
  await setup.close();
  const results: SideResult[] = [];
  try {
    // The baseline reads the first `baselineLimit` messages of a stand-in of that size, so its
    // reports are as shared as Troupe's: one report id a message, `--reports` of them.
    for (const [side, size] of [["troupe", total], ["baseline", baselineLimit]] as const) {
      const api = await startApi(size);
      try {
        results.push(await runSide(side, dbUrl, api.url, size));
      } finally {
        await api.stop();
      }
    }
  } finally {
    await drop();
  }
  const rate = (r: SideResult) => r.messages / r.seconds;
  const pages = Math.ceil(total / PAGE);
  console.log(
    `\nstand-in: ${args.latency} ms a call, ${PAGE} messages a page, ${args.reports} reports; ` +
      `Troupe report concurrency ${args.concurrency}\n`,
  );
  console.log("| side | messages | seconds | messages/s | external calls | peak RSS MB |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.side} | ${r.messages} | ${r.seconds.toFixed(1)} | ${rate(r).toFixed(0)} | ` +
        `${r.calls} | ${r.peakRssMb.toFixed(0)} |`,
    );
  }
  const t = results[0]!, b = results[1]!;
  console.log(
    `\nTroupe / baseline messages/s: ${(rate(t) / rate(b)).toFixed(1)}x; Troupe's calls ` +
      `${t.calls} against pages + unique reports = ${pages} + ≤ ${args.reports}`,
  );
}
