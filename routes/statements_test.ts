/**
 * Monthly statements through the HTTP app: a job per (tenant, month, format, usage version),
 * the file downloaded once made (PDF and XLSX), its days in the tenant's time zone and its
 * totals exact to the cent; another tenant's statement is a 404.
 */
import assert from "node:assert/strict";
import ExcelJS from "exceljs";
import { pdfLayoutText } from "../actors/documents/testing.ts";
import { localDay } from "../actors/usage/days.ts";
import { statementActor } from "../actors/usage/statement_job.ts";
import { creditsText } from "../actors/usage/statement_pdf.ts";
import { recordUsage, type UsageMessage } from "../actors/usage/store.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, apiCall, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { waitFor } from "../tests/harness.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;
const ZONE = "Pacific/Auckland";

interface World extends ApiWorld {
  key: string;
  otherKey: string;
  tenantId: string;
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-statements-" });
    let blobs!: BlobStore;
    const w = await openApiWorld((tdb) => {
      blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
      return [statementActor({ db: tdb.db, blobs, retries: 0 })];
    }, () => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      statements: { blobs },
    }));
    const tenant = await w.tenants.createTenant("acme");
    await w.tdb.db.query("UPDATE troupe_tenants SET time_zone = $2 WHERE id = $1", [
      tenant.id,
      ZONE,
    ]);
    const key = (await w.tenants.createKey(tenant.id)).key;
    const otherKey = (await w.tenants.createKey((await w.tenants.createTenant("other")).id)).key;
    const close = w.close;
    return {
      ...w,
      key,
      otherKey,
      tenantId: tenant.id,
      async close() {
        await close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

async function call(path: string, init: RequestInit & { key?: string; json?: unknown } = {}) {
  const w = await open();
  const post = init.json !== undefined ? { method: "POST" } : {};
  return await apiCall(w.app, init.key ?? w.key, path, { ...init, ...post });
}

/** Messages around May 2026 in Auckland (UTC+12): some UTC days are the next local day. */
function messages(from: number, n: number, reports: (string | null)[]): UsageMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `m${from + i}`,
    // From 30 April 12:00 UTC (1 May local) to past the end of May, every ~7 hours.
    timestamp: new Date(Date.parse("2026-04-30T11:00:00Z") + (from + i) * 7 * 3_600_000),
    creditsCents: BigInt(((from + i) % 13) * 10 + ((from + i) % 3 === 0 ? 7 : 1)),
    reportId: reports[(from + i) % reports.length]!,
  }));
}

const NAMES = new Map<string, string | null>([["r1", "Weekly revenue"], ["r2", "月度报告"]]);

async function record(ms: UsageMessage[]) {
  const w = await open();
  await w.tdb.db.transaction((tx) =>
    recordUsage(tx, {
      tenantId: w.tenantId,
      sourceId: "s1",
      timeZone: ZONE,
      messages: ms,
      reportNames: NAMES,
    })
  );
}

/** The expected May figures, from the messages alone (local days by `localDay`). */
function mayOf(ms: UsageMessage[]) {
  const may = ms.filter((m) => localDay(m.timestamp, ZONE).startsWith("2026-05"));
  return {
    cents: may.reduce((a, m) => a + m.creditsCents, 0n),
    messages: may.length,
    firstDay: may.filter((m) => localDay(m.timestamp, ZONE) === "2026-05-01").length,
  };
}

async function download(jobId: string) {
  const w = await open();
  return await waitFor(async () => {
    const r = await call(`/api/v1/usage/statements/${jobId}/file`);
    if (r.status === 200) return r;
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.headers.get("retry-after"), "1");
    const job = await w.runtime.getJob(jobId);
    assert.notEqual(job.status, "failed", JSON.stringify(job.error));
    return null;
  }, { timeoutMs: 30_000, what: `statement ${jobId}` });
}

Deno.test(
  { name: "statements: PDF and XLSX of a month, exact, one job per version", ...opts },
  async () => {
    const w = await open();
    const all = messages(0, 120, ["r1", "r2", null, "r-missing"]);
    await record(all);
    const expected = mayOf(all);
    assert.ok(expected.messages > 50 && expected.messages < all.length);

    const ask = () =>
      call("/api/v1/usage/statements", { json: { month: "2026-05", format: "pdf" } });
    // The first request starts the job; the same request again joins it (200 once it is done).
    const asked = [await ask()];
    asked.push(...await Promise.all([ask(), ask()]));
    assert.equal(asked[0]!.status, 202, JSON.stringify(asked[0]!.body));
    for (const r of asked) {
      assert.ok(r.status === 202 || r.status === 200, JSON.stringify(r.body));
      assert.equal(r.body.job.actor, "usage.statement");
      assert.equal(r.headers.get("location"), `/api/v1/usage/statements/${r.body.jobId}`);
    }
    const jobId = asked[0]!.body.jobId;
    for (const r of asked) assert.equal(r.body.jobId, jobId, "the same request joins the same job");

    const pdf = await download(jobId);
    assert.equal(pdf.headers.get("content-type"), "application/pdf");
    assert.match(pdf.headers.get("content-disposition")!, /usage-statement-2026-05\.pdf/);
    const text = await pdfLayoutText(pdf.bytes);
    assert.ok(text.includes(`Total credits: ${creditsText(expected.cents)}`), text.slice(0, 600));
    assert.ok(text.includes(`Messages: ${expected.messages}`));
    assert.ok(text.includes(`days in ${ZONE}`));
    assert.ok(text.includes("月度报告") && text.includes("Weekly revenue"));
    assert.match(text, new RegExp(`2026-05-01\\s+${expected.firstDay}\\s`));

    const view = await call(`/api/v1/usage/statements/${jobId}`);
    assert.equal(view.status, 200);
    assert.equal(view.body.status, "succeeded");
    assert.equal(view.body.file, `/api/v1/usage/statements/${jobId}/file`);
    assert.equal(
      view.body.job.result.totalCredits,
      creditsText(expected.cents).replaceAll(",", ""),
    );

    // Nothing changed: the same job, answered 200.
    const again = await call("/api/v1/usage/statements", {
      json: { month: "2026-05", format: "pdf" },
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.jobId, jobId);

    // The spreadsheet: its own job; typed cells; totals to the cent.
    const asXlsx = await call("/api/v1/usage/statements", {
      json: { month: "2026-05", format: "xlsx" },
    });
    assert.equal(asXlsx.status, 202);
    assert.notEqual(asXlsx.body.jobId, jobId);
    const xlsx = await download(asXlsx.body.jobId);
    assert.equal(
      xlsx.headers.get("content-type"),
      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    );
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(xlsx.bytes.buffer);
    const daily = wb.getWorksheet("Daily")!;
    assert.equal(daily.rowCount, 31 + 2);
    let cents = 0n;
    for (let r = 2; r <= 32; r++) {
      assert.equal(daily.getCell(r, 1).type, ExcelJS.ValueType.Date);
      assert.equal(daily.getCell(r, 3).type, ExcelJS.ValueType.Number);
      cents += BigInt(Math.round((daily.getCell(r, 3).value as number) * 100));
    }
    assert.equal(cents, expected.cents);
    assert.equal(daily.getCell(33, 2).value, expected.messages);

    // New usage in May: a new version, so a new job, with the new total.
    const more = messages(1000, 3, ["r1"]).map((m, i) => ({
      ...m,
      timestamp: new Date(`2026-05-1${i}T00:00:00Z`),
    }));
    await record(more);
    const after = await call("/api/v1/usage/statements", {
      json: { month: "2026-05", format: "pdf" },
    });
    assert.equal(after.status, 202);
    assert.notEqual(after.body.jobId, jobId);
    const newer = await pdfLayoutText((await download(after.body.jobId)).bytes);
    assert.ok(newer.includes(`Total credits: ${creditsText(mayOf([...all, ...more]).cents)}`));
    const docs = await w.tdb.db.query(
      "SELECT 1 FROM troupe_documents WHERE tenant_id = $1 AND kind = 'statement'",
      [w.tenantId],
    );
    assert.equal(docs.length, 2, "one stored statement per month and format");
  },
);

Deno.test({ name: "statements: per tenant, and bad requests", ...opts }, async () => {
  const w = await open();
  const mine = await call("/api/v1/usage/statements", {
    json: { month: "2026-06", format: "xlsx" },
  });
  assert.equal(mine.status, 202);
  for (const path of [`${mine.body.jobId}`, `${mine.body.jobId}/file`]) {
    const r = await call(`/api/v1/usage/statements/${path}`, { key: w.otherKey });
    assert.equal(r.status, 404, path);
    assert.equal(r.body.error.code, "NOT_FOUND");
  }
  // Another tenant's statement of the same month is its own job, empty.
  const theirs = await call("/api/v1/usage/statements", {
    key: w.otherKey,
    json: { month: "2026-06", format: "xlsx" },
  });
  assert.equal(theirs.status, 202);
  assert.notEqual(theirs.body.jobId, mine.body.jobId);
  assert.equal((await call(`/api/v1/usage/statements/not-a-job`)).status, 404);

  for (
    const json of [
      { month: "2026-13", format: "pdf" },
      { month: "May 2026", format: "pdf" },
      { month: "2026-05", format: "docx" },
      {},
    ]
  ) {
    const r = await call("/api/v1/usage/statements", { json });
    assert.equal(r.status, 400, JSON.stringify(json));
    assert.equal(r.body.error.code, "VALIDATION_FAILED");
  }
});

Deno.test(
  { name: "statements: a failed job is a 409, and asking again starts a new one", ...opts },
  async () => {
    const w = await open();
    await record(
      messages(2000, 4, ["r1"]).map((m, i) => ({
        ...m,
        timestamp: new Date(`2026-03-0${i + 2}T03:00:00Z`),
      })),
    );
    // Daily figures that disagree with the snapshots: the statement refuses to print them.
    const skew = (by: number) =>
      w.tdb.db.query(
        "UPDATE troupe_usage_daily SET credits_cents = credits_cents + $2 WHERE tenant_id = $1 AND day = '2026-03-02'",
        [w.tenantId, by],
      );
    await skew(1);
    const ask = () =>
      call("/api/v1/usage/statements", { json: { month: "2026-03", format: "pdf" } });
    // The job fails at once: the request that started it may see it failed already.
    const first = await ask();
    assert.ok(first.status === 202 || first.status === 409, JSON.stringify(first.body));
    const failedId: string = first.body.jobId ?? first.body.error.details.jobId;
    const failed = await waitFor(async () => {
      const r = await call(`/api/v1/usage/statements/${failedId}/file`);
      return r.status === 202 ? null : r;
    }, { timeoutMs: 30_000, what: "the failure" });
    assert.equal(failed.status, 409);
    assert.equal(failed.body.error.code, "STATEMENT_FAILED");
    assert.equal(failed.body.error.details.jobId, failedId);
    assert.match(failed.body.error.details.error.message, /cents by report/);

    await skew(-1);
    const second = await ask();
    assert.equal(second.status, 202);
    assert.notEqual(second.body.jobId, failedId);
    const pdf = await download(second.body.jobId);
    assert.equal(pdf.headers.get("content-type"), "application/pdf");
    // The same request again joins the new job, not the failed one.
    assert.equal((await ask()).body.jobId, second.body.jobId);
  },
);
