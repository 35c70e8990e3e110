/**
 * Deleting a tenant through `DELETE /api/v1/tenants/:id`, on PGlite and PostgreSQL: its
 * datasets, courses, vectors, jobs, keys and audit log go, another tenant's data (and the file
 * both uploaded) stays, its keys stop working, a failure mid-way is finished by the retry
 * without counting twice, and running the deletion again is harmless.
 */
import assert from "node:assert/strict";
import { echoActor } from "../system/echo.ts";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { datasetActors } from "../datasets/pipeline.ts";
import { datasetTenantData } from "../datasets/tenant_data.ts";
import { courseActors } from "../courses/pipeline.ts";
import { courseTenantData } from "../courses/delete.ts";
import { documentTenantData } from "../documents/tenant_data.ts";
import { putDocumentBytes, recordDocument } from "../documents/stored.ts";
import { usageTenantData } from "../usage/tenant_data.ts";
import { recordUsage } from "../usage/store.ts";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import { PostgresBlobStore } from "../../db/blobs/postgres.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { TenantStore } from "../../db/tenants.ts";
import { localCourseAdapters, localDatasetAdapters } from "../../tests/local_adapters.ts";
import { createApp } from "../../routes/app.ts";
import { MemoryRateLimiter } from "../../db/ratelimit/memory.ts";
import { type DbTarget, pgliteTarget, postgresTarget, waitFor } from "../../tests/harness.ts";
import { makePdf, sentences } from "../../tests/fixtures/pdfs.ts";
import { type TenantDataPart, tenantDeletionActor } from "./delete.ts";

const SHARED_CSV = "city,people\nOslo,700\nLima,9000\n";

for (const target of [pgliteTarget, postgresTarget] as DbTarget[]) {
  Deno.test({
    name: `${target.name}: deleting a tenant removes all its data and nothing of another's`,
  }, async () => {
    const tdb = await target.open();
    const dir = await Deno.makeTempDir({ prefix: "troupe-tenant-delete-" });
    const db = tdb.db;
    const blobs: BlobStore = target.name === "pglite"
      ? new FsBlobStore(dir)
      : new PostgresBlobStore(db);
    const courseAdapters = localCourseAdapters(db);
    const vectors = courseAdapters.vectors;
    const tenants = new TenantStore(db);
    // A part that fails once, after the datasets went: the retry must finish the deletion.
    let failures = 0;
    const flaky: TenantDataPart = {
      name: "flaky",
      async deleteTenantData(ctx) {
        await ctx.step(() => {
          if (failures++ === 0) throw new Error("crash mid-deletion");
          return Promise.resolve({ passes: 1 });
        });
      },
    };
    const runtime: Runtime = new Runtime({
      db,
      actors: [
        echoActor,
        ...datasetActors({ ...localDatasetAdapters(), db, blobs }),
        ...courseActors({ ...courseAdapters, db, blobs }),
        tenantDeletionActor({
          db,
          blobs,
          parts: [
            datasetTenantData,
            flaky,
            courseTenantData(vectors),
            usageTenantData,
            documentTenantData,
          ],
          cancel: (id, tenantId) => runtime.cancel(id, tenantId),
          onKeysRemoved: () => tenants.forgetAuthentications(),
          blobGraceMs: 0,
        }),
      ],
      transport: new TableQueueTransport(db, { pollMs: 50 }),
      logger: jsonLogger("silent"),
    });
    await runtime.start();
    const app = createApp({
      runtime,
      limiter: new MemoryRateLimiter(),
      tenants,
      logger: jsonLogger("silent"),
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      datasets: { db, blobs },
      courses: { db, blobs, vectors, embedder: courseAdapters.embedder },
    });
    const call = async (key: string, path: string, init: RequestInit = {}) => {
      const res = await app.request(`/api/v1${path}`, {
        ...init,
        headers: { "x-api-key": key, ...init.headers as Record<string, string> },
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const finished = (key: string, jobId: string) =>
      waitFor(async () => {
        const { body } = await call(key, `/jobs/${jobId}`);
        return ["succeeded", "failed", "cancelled"].includes(body.status) ? body : null;
      }, { timeoutMs: 60_000, what: `job ${jobId}` });
    const uploadCsv = async (key: string, text: string) => {
      const { status, body } = await call(key, "/datasets?name=d", {
        method: "POST",
        body: text,
        headers: { "content-type": "text/csv" },
      });
      assert.equal(status, 202, JSON.stringify(body));
      assert.equal((await finished(key, body.jobId)).status, "succeeded");
      return body.datasetId as string;
    };
    const count = async (sql: string, params: unknown[]) =>
      Number((await db.query<{ n: number }>(sql, params))[0]!.n);
    try {
      const doomed = await tenants.createTenant("doomed");
      const doomedKey = (await tenants.createKey(doomed.id)).key;
      await tenants.createKey(doomed.id, { name: "second" });
      const other = await tenants.createTenant("other");
      const otherKey = (await tenants.createKey(other.id)).key;
      const ops = await tenants.createTenant("ops");
      const adminKey = (await tenants.createKey(ops.id, { admin: true })).key;
      const plainKey = (await tenants.createKey(ops.id)).key;

      const shared = await uploadCsv(doomedKey, SHARED_CSV);
      await uploadCsv(doomedKey, "a,b\n1,2\n3,4\n5,6\n");
      const kept = await uploadCsv(otherKey, SHARED_CSV);
      // A stored document: the dataset's report, made by its job.
      await waitFor(async () => {
        const res = await app.request(`/api/v1/datasets/${shared}/report.pdf`, {
          headers: { "x-api-key": doomedKey },
        });
        await res.body?.cancel();
        return res.status === 200 ? true : null;
      }, { timeoutMs: 60_000, what: "the dataset report" });
      // A stored statement (the dataset's report goes with its dataset).
      const statement = await putDocumentBytes(db, blobs, new TextEncoder().encode("%PDF-1.7 x"));
      await db.transaction((tx) =>
        recordDocument(tx, blobs, {
          tenantId: doomed.id,
          kind: "statement",
          key: "2026-12:pdf",
          version: "v1",
          ...statement,
          contentType: "application/pdf",
          fileName: "statement.pdf",
          jobId: null,
        })
      );
      // Usage of both tenants.
      for (const tenantId of [doomed.id, other.id]) {
        await db.transaction((tx) =>
          recordUsage(tx, {
            tenantId,
            sourceId: "s1",
            timeZone: "UTC",
            messages: [1, 2, 3].map((i) => ({
              id: String(i),
              timestamp: new Date(Date.UTC(2026, 11, i)),
              creditsCents: 125n,
              reportId: null,
            })),
            reportNames: new Map(),
          })
        );
      }
      const form = new FormData();
      form.append("title", "Doomed course");
      const pdf = await makePdf([{ heading: "Cells", paragraphs: [sentences("cell", 8)] }]);
      form.append("files", new File([new Uint8Array(pdf)], "c.pdf", { type: "application/pdf" }));
      const req = new Request("http://x/", { method: "POST", body: form });
      const course = await call(doomedKey, "/courses", {
        method: "POST",
        body: await req.arrayBuffer(),
        headers: { "content-type": req.headers.get("content-type")! },
      });
      assert.equal(course.status, 202);
      assert.equal((await finished(doomedKey, course.body.jobId)).status, "succeeded");
      const echo = await call(doomedKey, "/actors/system.echo/jobs", {
        method: "POST",
        body: JSON.stringify({ input: { message: "x" } }),
        headers: { "content-type": "application/json" },
      });
      assert.equal((await finished(doomedKey, echo.body.jobId)).status, "succeeded");
      // A job that waits: the deletion cancels it.
      const later = await call(doomedKey, "/actors/system.echo/jobs", {
        method: "POST",
        body: JSON.stringify({ input: { key: "later" }, delayMs: 3_600_000 }),
        headers: { "content-type": "application/json" },
      });
      assert.equal(later.status, 202);
      const vectorsBefore = await count(
        "SELECT count(*)::int AS n FROM troupe_course_vectors WHERE tenant_id = $1",
        [doomed.id],
      );
      assert.ok(vectorsBefore > 0);
      assert.equal((await call(doomedKey, "/jobs")).status, 200); // its key works (and is cached)

      // Who may ask.
      assert.equal(
        (await call(plainKey, `/tenants/${doomed.id}`, { method: "DELETE" })).status,
        403,
      );
      assert.equal((await call(adminKey, `/tenants/${ops.id}`, { method: "DELETE" })).status, 409);
      const unknown = await call(adminKey, `/tenants/${crypto.randomUUID()}`, { method: "DELETE" });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error.code, "NOT_FOUND");

      const asked = await call(adminKey, `/tenants/${doomed.id}`, { method: "DELETE" });
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      const job = await finished(adminKey, asked.body.jobId);
      assert.equal(job.status, "succeeded", JSON.stringify(job.error));
      assert.equal(job.attempts, 2, "the crash mid-way was retried");
      const removed = job.result.removed;
      assert.deepEqual(removed.keys, { apiKeys: 2 });
      assert.equal(removed.jobs.cancelled, 1);
      assert.deepEqual(removed.datasets, { datasets: 2, rows: 5, chunks: 2 });
      assert.deepEqual(removed.flaky, { passes: 1 });
      assert.equal(removed.courses.courses, 1);
      assert.equal(removed.courses.vectors, vectorsBefore);
      assert.ok(removed.courses.passages >= 1);
      assert.equal(removed.courses.sources, 1);
      assert.ok(removed.runtime.jobs >= 4);
      assert.ok(removed.audit.entries >= 3);
      assert.deepEqual(removed.tenant, { tenants: 1 });
      assert.deepEqual(removed.usage, { snapshots: 3, dailyAggregates: 3, reportTotals: 1 });
      assert.deepEqual(removed.documents, { documents: 1 });
      // Five files held (two CSVs, the PDF, the report, the statement); the CSV the other
      // tenant also uploaded stays.
      assert.deepEqual(removed.blobs, { held: 5, removed: 4 });

      for (
        const table of [
          "troupe_datasets",
          "troupe_courses",
          "troupe_course_chunks",
          "troupe_course_vectors",
          "troupe_jobs",
          "troupe_dead_letters",
          "troupe_api_keys",
          "troupe_audit_log",
          "troupe_blob_refs",
          "troupe_usage_snapshots",
          "troupe_usage_daily",
          "troupe_documents",
        ]
      ) {
        assert.equal(
          await count(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`, [doomed.id]),
          0,
          table,
        );
      }
      assert.equal(
        await count("SELECT count(*)::int AS n FROM troupe_tenants WHERE id = $1", [
          doomed.id,
        ]),
        0,
      );
      const dsTable = `troupe_ds_${shared.replaceAll("-", "")}`;
      assert.equal(
        await count("SELECT count(*)::int AS n FROM pg_class WHERE relname = $1", [dsTable]),
        0,
      );
      assert.equal((await call(doomedKey, "/jobs")).status, 401, "its keys stop working");
      // The deletion's own record stays, under no tenant.
      assert.equal(
        await count(
          `SELECT count(*)::int AS n FROM troupe_audit_log
           WHERE tenant_id IS NULL AND action = 'tenant.delete' AND target_id = $1`,
          [doomed.id],
        ),
        1,
      );

      const otherRows = await call(otherKey, `/datasets/${kept}/rows`);
      assert.equal(otherRows.status, 200);
      assert.equal(otherRows.body.rows.length, 2);
      const [held] = await db.query<{ sha256: string }>(
        "SELECT blob_sha256 AS sha256 FROM troupe_datasets WHERE id = $1",
        [kept],
      );
      assert.ok(await blobs.stat(held!.sha256), "the shared file stays");

      // Again: harmless, the same report.
      const again = await runtime.enqueue("tenant.delete", { tenantId: doomed.id }, {
        tenantId: ops.id,
      });
      const second = await finished(adminKey, again.job.id);
      assert.equal(second.status, "succeeded");
      assert.deepEqual(second.result, job.result);
      assert.equal((await call(otherKey, `/datasets/${kept}/rows`)).body.rows.length, 2);
      assert.equal(
        (await call(adminKey, `/tenants/${doomed.id}`, { method: "DELETE" })).status,
        404,
      );
    } finally {
      await runtime.stop();
      courseAdapters.extractor.close();
      await tdb.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
