/**
 * The usage API on PGlite, PostgreSQL and Neon through `app.request()`: pages (offset and keyset,
 * every sort), totals, filters, per day, per report, forecast, export, the live stream, the
 * tenant's time zone, tenant isolation and bad input. Expectations are recounted from the
 * messages written, never written down.
 */
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { localDay } from "../actors/usage/days.ts";
import { centsNumber } from "../actors/usage/money.ts";
import { recordUsage, type UsageMessage } from "../actors/usage/store.ts";
import { TenantStore } from "../db/tenants.ts";
import { sseReader, targets, waitFor } from "../tests/harness.ts";
import { createApp } from "./app.ts";

interface Msg extends UsageMessage {
  sourceId: string;
}

/** 3 days × 2 sources, 4 reports (one name missing, some messages with none), tied instants. */
function messages(): Msg[] {
  const out: Msg[] = [];
  for (let i = 0; i < 60; i++) {
    const at = Date.UTC(2026, 10, 29, 3) + Math.floor(i / 2) * 2.4 * 3600_000;
    out.push({
      sourceId: i % 3 === 0 ? "src-b" : "src-a",
      id: `m${i}`,
      timestamp: new Date(at),
      creditsCents: BigInt((i * 37) % 500 + (i % 4 === 0 ? 0 : 5)),
      reportId: i % 5 === 0 ? null : `r${i % 4}`,
    });
  }
  return out;
}

const NAMES = new Map<string, string | null>([["r0", "Zeta"], ["r1", "alpha"], ["r2", "Beta"]]);

async function write(db: Runtime["db"], tenantId: string, msgs: Msg[], timeZone = "UTC") {
  for (const sourceId of new Set(msgs.map((m) => m.sourceId))) {
    await db.transaction((tx) =>
      recordUsage(tx, {
        tenantId,
        sourceId,
        timeZone,
        messages: msgs.filter((m) => m.sourceId === sourceId),
        reportNames: NAMES,
      })
    );
  }
}

const keyOf = (m: Msg) => `${m.sourceId}/${m.id}`;
const nameOf = (m: Msg) => (m.reportId === null ? null : NAMES.get(m.reportId) ?? null);

/** The order the API promises: the sort key, then (ts, source, message), one direction. */
function sorted(msgs: Msg[], sortBy: string, order: "asc" | "desc"): string[] {
  const cmp = (a: Msg, b: Msg) => {
    const keys = (m: Msg): (number | string)[] => [
      ...(sortBy === "credits_used" ? [Number(m.creditsCents)] : []),
      ...(sortBy === "report_name" ? [nameOf(m) ?? ""] : []),
      m.timestamp.getTime(),
      m.sourceId,
      m.id,
    ];
    const ka = keys(a), kb = keys(b);
    for (let i = 0; i < ka.length; i++) {
      if (ka[i]! < kb[i]!) return -1;
      if (ka[i]! > kb[i]!) return 1;
    }
    return 0;
  };
  const s = [...msgs].sort(cmp).map(keyOf);
  return order === "asc" ? s : s.reverse();
}

for (const target of targets) {
  Deno.test(`usage API (${target.name})`, async (t) => {
    const tdb = await target.open();
    const db = tdb.db;
    const runtime = new Runtime({
      db,
      actors: [],
      transport: new TableQueueTransport(db),
      logger: jsonLogger("silent"),
    });
    const tenants = new TenantStore(db);
    const app = createApp({
      runtime,
      limiter: new MemoryRateLimiter(),
      tenants,
      logger: jsonLogger("silent"),
      perKeyPerMinute: 1_000_000,
    });
    const acme = await tenants.createTenant("acme");
    const key = (await tenants.createKey(acme.id)).key;
    const other = await tenants.createTenant("other");
    const otherKey = (await tenants.createKey(other.id)).key;
    const all = messages();
    await write(db, acme.id, all);
    await write(db, other.id, all.slice(0, 5).map((m) => ({ ...m, sourceId: "src-z" })));
    const get = (path: string, k = key, headers: Record<string, string> = {}) =>
      app.request(`/api/v1${path}`, { headers: { "x-api-key": k, ...headers } });
    const json = async (path: string, k = key) => {
      const res = await get(path, k);
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body;
    };
    try {
      await t.step("pages and keyset cursors follow every sort, with exact totals", async () => {
        for (const sortBy of ["timestamp", "credits_used", "report_name"]) {
          for (const order of ["asc", "desc"] as const) {
            const want = sorted(all, sortBy, order);
            const first = await json(`/usage?sortBy=${sortBy}&sortOrder=${order}&pageSize=7`);
            assert.equal(first.total, all.length);
            assert.equal(first.totalPages, Math.ceil(all.length / 7));
            const byPage: string[] = [];
            for (let p = 1; p <= first.totalPages; p++) {
              const page = await json(
                `/usage?sortBy=${sortBy}&sortOrder=${order}&pageSize=7&page=${p}`,
              );
              byPage.push(
                ...page.items.map((i: { sourceId: string; messageId: string }) =>
                  `${i.sourceId}/${i.messageId}`
                ),
              );
            }
            assert.deepEqual(byPage, want, `${sortBy} ${order} by page`);
            const byCursor: string[] = [];
            let cursor: string | null = null;
            do {
              const page: { items: { sourceId: string; messageId: string }[]; nextCursor: string } =
                await json(
                  `/usage?sortBy=${sortBy}&sortOrder=${order}&pageSize=9` +
                    (cursor ? `&cursor=${cursor}` : ""),
                );
              byCursor.push(...page.items.map((i) => `${i.sourceId}/${i.messageId}`));
              cursor = page.nextCursor;
            } while (cursor);
            assert.deepEqual(byCursor, want, `${sortBy} ${order} by cursor`);
          }
        }
        const one = (await json("/usage?sortBy=timestamp&sortOrder=asc&pageSize=1")).items[0];
        const m = sorted(all, "timestamp", "asc")[0]!;
        const src = all.find((x) => keyOf(x) === m)!;
        assert.equal(one.creditsUsed, centsNumber(src.creditsCents));
        assert.equal(one.timestamp, src.timestamp.toISOString());
        assert.equal(one.reportName, nameOf(src));
      });

      await t.step("filters: instants, days, source, report; totals match the rows", async () => {
        const from = new Date(Date.UTC(2026, 10, 29, 17, 30));
        const to = new Date(Date.UTC(2026, 11, 1, 6, 15));
        const cases: [string, (m: Msg) => boolean][] = [
          [`from=${from.toISOString()}`, (m) => m.timestamp >= from],
          [`to=${to.toISOString()}`, (m) => m.timestamp < to],
          [
            `from=${from.toISOString()}&to=${to.toISOString()}`,
            (m) => m.timestamp >= from && m.timestamp < to,
          ],
          [
            "from=2026-11-30&to=2026-11-30",
            (m) => localDay(m.timestamp, "UTC") === "2026-11-30",
          ],
          ["sourceId=src-b", (m) => m.sourceId === "src-b"],
          ["reportId=r1", (m) => m.reportId === "r1"],
          ["reportId=r2&sourceId=src-a", (m) => m.reportId === "r2" && m.sourceId === "src-a"],
          [
            `reportId=r3&from=${from.toISOString()}`,
            (m) => m.reportId === "r3" && m.timestamp >= from,
          ],
          [
            `sourceId=src-a&from=${from.toISOString()}&to=2026-11-30`,
            (m) =>
              m.sourceId === "src-a" && m.timestamp >= from &&
              m.timestamp < new Date("2026-12-01T00:00:00Z"),
          ],
        ];
        for (const [query, keep] of cases) {
          const want = sorted(all.filter(keep), "timestamp", "desc");
          assert.ok(want.length > 0 && want.length < all.length, query);
          const page = await json(`/usage?${query}&pageSize=100`);
          assert.equal(page.total, want.length, query);
          assert.deepEqual(
            page.items.map((i: { sourceId: string; messageId: string }) =>
              `${i.sourceId}/${i.messageId}`
            ),
            want,
            query,
          );
        }
      });

      await t.step("per day and per report, exact to the cent", async () => {
        const days = new Map<string, { cents: bigint; n: number }>();
        for (const m of all) {
          const d = localDay(m.timestamp, "UTC");
          const f = days.get(d) ?? { cents: 0n, n: 0 };
          f.cents += m.creditsCents;
          f.n++;
          days.set(d, f);
        }
        const daily = await json("/usage/daily");
        assert.equal(daily.timeZone, "UTC");
        assert.deepEqual(
          daily.days.map((d: { day: string; credits: number; messages: number }) => [
            d.day,
            d.credits,
            d.messages,
          ]),
          [...days].sort().map(([d, f]) => [d, centsNumber(f.cents), f.n]),
        );
        const first = daily.days[0];
        assert.ok(Math.abs(first.averageCredits - first.credits / first.messages) <= 0.005);
        const ranged = await json("/usage/daily?from=2026-11-30&to=2026-11-30&sourceId=src-b");
        const want = all.filter((m) =>
          m.sourceId === "src-b" && localDay(m.timestamp, "UTC") === "2026-11-30"
        );
        assert.equal(ranged.days.length, 1);
        assert.equal(ranged.days[0].messages, want.length);
        assert.equal(
          ranged.days[0].credits,
          centsNumber(want.reduce((s, m) => s + m.creditsCents, 0n)),
        );

        const reports = new Map<string | null, bigint>();
        for (const m of all) {
          reports.set(m.reportId, (reports.get(m.reportId) ?? 0n) + m.creditsCents);
        }
        const page = await json("/usage/reports?sortBy=credits_used&sortOrder=desc");
        assert.equal(page.total, reports.size);
        assert.deepEqual(
          page.items.map((r: { reportId: string | null; credits: number }) => [
            r.reportId,
            r.credits,
          ]),
          [...reports].sort((a, b) => Number(b[1] - a[1]) || ((b[0] ?? "") < (a[0] ?? "") ? -1 : 1))
            .map(([id, c]) => [id, centsNumber(c)]),
        );
        const byName = await json("/usage/reports?sortBy=report_name&sortOrder=asc&pageSize=2");
        assert.equal(byName.totalPages, Math.ceil(reports.size / 2));
        assert.equal(byName.items.length, 2);
      });

      await t.step("forecast of a past month is its total", async () => {
        const f = await json("/usage/forecast?month=2026-11");
        const nov = all.filter((m) => m.timestamp < new Date("2026-12-01T00:00:00Z"));
        const total = centsNumber(nov.reduce((s, m) => s + m.creditsCents, 0n));
        assert.equal(f.daysInMonth, 30);
        assert.equal(f.toDateCredits, total);
        assert.ok(f.status === "past" ? f.projectedCredits === total : f.projectedCredits >= 0);
        assert.equal(f.trailing.days, 14);
      });

      await t.step("another tenant sees none of it", async () => {
        const page = await json("/usage?sourceId=src-a", otherKey);
        assert.equal(page.total, 0);
        assert.deepEqual(page.items, []);
        const mine = await json("/usage", otherKey);
        assert.equal(mine.total, 5);
        assert.ok(mine.items.every((i: { sourceId: string }) => i.sourceId === "src-z"));
        assert.deepEqual((await json("/usage/daily?sourceId=src-a", otherKey)).days, []);
        assert.deepEqual((await json("/usage/reports?sourceId=src-a", otherKey)).items, []);
        const csv = await (await get("/usage/export?sourceId=src-a", otherKey)).text();
        assert.equal(csv.trim().split("\r\n").length, 1);
      });

      await t.step("bad parameters and injection attempts are 400s naming them", async () => {
        const bad: [string, string][] = [
          ["/usage?sortBy=ts;DROP TABLE troupe_usage_snapshots", "sortBy"],
          ["/usage?sortBy=credits_cents", "sortBy"],
          ["/usage?sortOrder=desc,ts", "sortOrder"],
          ["/usage?sourceId=' OR 1=1 --", "sourceId"],
          ["/usage?reportId=r1' OR '1'='1", "reportId"],
          ["/usage?from=2026-11-31", "from"],
          ["/usage?to=yesterday", "to"],
          ["/usage?from=2026-12-01T00:00:00", "from"],
          ["/usage?pageSize=101", "pageSize"],
          ["/usage?page=0", "page"],
          ["/usage?page=1;SELECT 1", "page"],
          ["/usage?page=1000&pageSize=100", "page"],
          ["/usage?cursor=bm9wZQ", "cursor"],
          ["/usage?orderBy=ts", "orderBy"],
          ["/usage?from=2026-12-02&to=2026-12-01", "from"],
          ["/usage/daily?sourceId=a%20b", "sourceId"],
          ["/usage/reports?sortBy=sum(credits_cents)", "sortBy"],
          ["/usage/forecast?month=2026-13", "month"],
          ["/usage/forecast", "month"],
          ["/usage/export?format=pdf", "format"],
        ];
        for (const [path, param] of bad) {
          const res = await get(path);
          const body = await res.json();
          assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
          assert.equal(body.error.code, "VALIDATION_FAILED", path);
          assert.match(body.error.message, new RegExp(param), path);
        }
        const other = await json("/usage?pageSize=2&sortBy=credits_used");
        const res = await get(`/usage?cursor=${other.nextCursor}`);
        assert.equal(res.status, 400, "a cursor of another sort");
        const stream = await get("/usage/stream", key, { "last-event-id": "1 OR 1=1" });
        assert.equal(stream.status, 400);
        await stream.body?.cancel();
      });

      await t.step("export: CSV and a typed XLSX of the filtered rows", async () => {
        const csvRes = await get("/usage/export?sourceId=src-b");
        assert.equal(csvRes.headers.get("content-type"), "text/csv; charset=utf-8");
        const lines = (await csvRes.text()).trim().split("\r\n");
        const want = all.filter((m) => m.sourceId === "src-b");
        assert.equal(
          lines[0],
          "timestamp,day,source_id,message_id,credits_used,report_id,report_name",
        );
        assert.equal(lines.length, want.length + 1);
        const firstM = sorted(want, "timestamp", "asc")[0]!.split("/")[1]!;
        const m = want.find((x) => x.id === firstM)!;
        assert.equal(
          lines[1],
          [
            m.timestamp.toISOString(),
            localDay(m.timestamp, "UTC"),
            "src-b",
            m.id,
            centsNumber(m.creditsCents).toFixed(2),
            m.reportId ?? "",
            nameOf(m) ?? "",
          ].join(","),
        );
        const xlsx = await get("/usage/export?format=xlsx&reportId=r1");
        assert.equal(xlsx.status, 200);
        const wb = new ExcelJS.Workbook();
        await wb.xlsx.load(await xlsx.arrayBuffer());
        const ws = wb.worksheets[0]!;
        const r1 = all.filter((x) => x.reportId === "r1");
        assert.equal(ws.rowCount, r1.length + 1);
        const row = ws.getRow(2);
        assert.ok(row.getCell(1).value instanceof Date);
        assert.equal(typeof row.getCell(5).value, "number");
        assert.equal(row.getCell(6).value, "r1");
      });

      await t.step("the live stream resumes after Last-Event-ID and sends new usage", async () => {
        const res = await app.request("/api/v1/usage/stream", {
          headers: { "x-api-key": key, "last-event-id": "0" },
        });
        const sse = sseReader(res);
        const firstEvent = await sse.next((e) => e.event === "usage");
        assert.ok(Number(firstEvent.data.seq) > 0);
        const lastOld = await sse.next((e) => e.event === "usage" && e.data.messageId === "m59");
        await write(db, acme.id, [{
          sourceId: "src-c",
          id: "new-1",
          timestamp: new Date("2026-12-02T10:00:00Z"),
          creditsCents: 1234n,
          reportId: null,
        }]);
        const fresh = await sse.next((e) => e.event === "usage" && e.data.messageId === "new-1");
        assert.equal(fresh.data.creditsUsed, 12.34);
        assert.ok(BigInt(fresh.data.seq) > BigInt(lastOld.data.seq));
        await sse.cancel();
        // Another tenant's stream starts after everything written so far, and sees none of it.
        const res2 = await app.request("/api/v1/usage/stream", {
          headers: { "x-api-key": otherKey, "last-event-id": "0" },
        });
        const sse2 = sseReader(res2);
        const seen = await sse2.next((e) => e.event === "usage");
        assert.equal(seen.data.sourceId, "src-z");
        await sse2.cancel();
      });

      await t.step("streams are bounded per tenant and freed when their client goes", async () => {
        const open = async () =>
          await app.request("/api/v1/usage/stream", { headers: { "x-api-key": key } });
        const streams: Response[] = [];
        try {
          for (let i = 0; i < 10; i++) {
            const res = await open();
            assert.equal(res.status, 200);
            streams.push(res);
          }
          const refused = await open();
          assert.equal(refused.status, 429);
          assert.equal((await refused.json()).error.code, "TOO_MANY_STREAMS");
          await streams.shift()!.body!.cancel();
          const again = await waitFor(async () => {
            const res = await open();
            if (res.status === 200) return res;
            await res.body?.cancel();
            return null;
          }, { timeoutMs: 10_000, what: "a stream slot freed by the client that went" });
          streams.push(again);
        } finally {
          for (const s of streams) await s.body?.cancel().catch(() => {});
        }
      });

      await t.step("a new time zone re-days the usage and rebuilds the daily figures", async () => {
        const bad = await app.request("/api/v1/tenant", {
          method: "PATCH",
          headers: { "x-api-key": key, "content-type": "application/json" },
          body: JSON.stringify({ timeZone: "Mars/Olympus" }),
        });
        assert.equal(bad.status, 400);
        const zone = "America/New_York";
        const res = await app.request("/api/v1/tenant", {
          method: "PATCH",
          headers: { "x-api-key": key, "content-type": "application/json" },
          body: JSON.stringify({ timeZone: zone }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        assert.equal((await json("/tenant")).timeZone, zone);
        const now = await db.query<{ source_id: string; message_id: string; ts: Date | string }>(
          "SELECT source_id, message_id, ts FROM troupe_usage_snapshots WHERE tenant_id = $1",
          [acme.id],
        );
        const cents = new Map(all.map((m) => [keyOf(m), m.creditsCents]));
        cents.set("src-c/new-1", 1234n);
        const days = new Map<string, { cents: bigint; n: number }>();
        for (const r of now) {
          const d = localDay(new Date(r.ts), zone);
          const f = days.get(d) ?? { cents: 0n, n: 0 };
          f.cents += cents.get(`${r.source_id}/${r.message_id}`)!;
          f.n++;
          days.set(d, f);
        }
        const daily = await json("/usage/daily");
        assert.equal(daily.timeZone, zone);
        assert.deepEqual(
          daily.days.map((d: { day: string; credits: number; messages: number }) => [
            d.day,
            d.credits,
            d.messages,
          ]),
          [...days].sort().map(([d, f]) => [d, centsNumber(f.cents), f.n]),
        );
        const instant = new Date("2026-12-01T03:00:00Z");
        const fromInstant = await json(`/usage/daily?from=${instant.toISOString()}`);
        assert.equal(fromInstant.days[0].day, localDay(instant, zone), "an instant is its day");
        const nov30 = all.filter((m) => localDay(m.timestamp, zone) === "2026-11-30");
        assert.equal((await json("/usage?from=2026-11-30&to=2026-11-30")).total, nov30.length);
        const audit = await json("/audit");
        assert.ok(
          JSON.stringify(audit).includes("tenant.time_zone"),
          "the change is in the audit log",
        );
      });
    } finally {
      await tdb.cleanup();
    }
  });
}
