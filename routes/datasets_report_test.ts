/**
 * The dataset report as a job through the HTTP app: `GET .../report.pdf` answers `202` with
 * the job until the report is stored, then the PDF from the blob store; one job per dataset
 * version, shared by concurrent requests; a new version makes it stale; names in Greek and
 * CJK are printed; another tenant's dataset is a 404; deleting the dataset releases it.
 */
import { localDatasetAdapters } from "../tests/local_adapters.ts";
import assert from "node:assert/strict";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { pdfText } from "../actors/documents/testing.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, apiCall, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { countRows, waitFor } from "../tests/harness.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;

interface World extends ApiWorld {
  key: string;
  otherKey: string;
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-report-" });
    let blobs!: BlobStore;
    const w = await openApiWorld((tdb) => {
      blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
      return datasetActors({ ...localDatasetAdapters(), db: tdb.db, blobs });
    }, (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      datasets: { db: tdb.db, blobs, maxBytes: 2_000_000 },
    }));
    const key = (await w.tenants.createKey((await w.tenants.createTenant("acme")).id)).key;
    const otherKey = (await w.tenants.createKey((await w.tenants.createTenant("other")).id)).key;
    const close = w.close;
    return {
      ...w,
      key,
      otherKey,
      async close() {
        await close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

async function call(path: string, init: RequestInit & { key?: string } = {}) {
  const w = await open();
  return await apiCall(w.app, init.key ?? w.key, path, init);
}

/** Uploads `csv` and waits until the dataset is ready; its id. */
async function readyDataset(csv: string, name: string): Promise<string> {
  const up = await call(`/api/v1/datasets?name=${encodeURIComponent(name)}`, {
    method: "POST",
    body: csv,
    headers: { "content-type": "text/csv" },
  });
  assert.equal(up.status, 202, JSON.stringify(up.body));
  await waitFor(async () => {
    const d = await call(`/api/v1/datasets/${up.body.datasetId}`);
    assert.notEqual(d.body.status, "failed", JSON.stringify(d.body.error));
    return d.body.status === "ready";
  }, { timeoutMs: 30_000, what: "the dataset" });
  return up.body.datasetId;
}

/** Asks for the report until it is a PDF; the answers before it were `202`s of one job. */
async function reportOf(id: string) {
  const jobs = new Set<string>();
  const pdf = await waitFor(async () => {
    const r = await call(`/api/v1/datasets/${id}/report.pdf`);
    if (r.status === 200) return r;
    assert.equal(r.status, 202, JSON.stringify(r.body));
    jobs.add(r.body.job.id);
    return null;
  }, { timeoutMs: 30_000, what: "the report" });
  return { pdf, jobs };
}

const reportJobs = async () => {
  const w = await open();
  return (await w.tdb.db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_jobs WHERE actor = 'dataset.report'",
  ))[0]!.n;
};

Deno.test(
  { name: "dataset report: a job, then the stored PDF in any script", ...opts },
  async () => {
    const w = await open();
    const id = await readyDataset(
      "πόλη,都市,amount\nΑθήνα,東京,1.5\nΘεσσαλονίκη,北京,2.5\nΠάτρα,서울,3\n",
      "δεδομένα 数据",
    );
    const before = await reportJobs();
    // The first request starts the job; the ones after it join it (or find the PDF, when the
    // job was quick).
    const first = [await call(`/api/v1/datasets/${id}/report.pdf`)];
    first.push(...await Promise.all([0, 1].map(() => call(`/api/v1/datasets/${id}/report.pdf`))));
    assert.equal(first[0]!.status, 202, JSON.stringify(first[0]!.body));
    for (const r of first.filter((r) => r.status !== 200)) {
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.equal(r.body.job.actor, "dataset.report");
      assert.equal(r.body.jobId, r.body.job.id);
      assert.equal(r.body.job.id, first[0]!.body.job.id);
      assert.equal(r.headers.get("location"), `/api/v1/jobs/${r.body.job.id}`);
      assert.equal(r.headers.get("retry-after"), "1");
    }
    const job = await call(first[0]!.headers.get("location")!);
    assert.equal(job.status, 200);
    assert.equal(job.body.id, first[0]!.body.job.id);

    const { pdf, jobs } = await reportOf(id);
    // Every request that found the job running joined the first one (a quick job may be done
    // before the first look).
    assert.deepEqual([...jobs].filter((j) => j !== first[0]!.body.job.id), []);
    assert.equal(pdf.headers.get("content-type"), "application/pdf");
    assert.equal(Number(pdf.headers.get("content-length")), pdf.bytes.length);
    const text = await pdfText(pdf.bytes);
    for (const s of ["δεδομένα 数据", "πόλη", "都市", "Αθήνα", "Θεσσαλονίκη", "東京", "서울"]) {
      assert.ok(text.includes(s), `the report prints "${s}"`);
    }
    assert.equal(await reportJobs(), before + 1);

    // Served from storage: the same bytes, no new job.
    const again = await call(`/api/v1/datasets/${id}/report.pdf`);
    assert.equal(again.status, 200);
    assert.deepEqual(again.bytes, pdf.bytes);
    assert.equal(await reportJobs(), before + 1);

    // Another tenant's dataset does not exist for it.
    const other = await call(`/api/v1/datasets/${id}/report.pdf`, { key: w.otherKey });
    assert.equal(other.status, 404);
    assert.equal(other.body.error.code, "NOT_FOUND");

    // A new version of the dataset makes the stored report stale: a new job writes it.
    const [v1] = await w.tdb.db.query<{ sha256: string }>(
      "SELECT sha256 FROM troupe_documents WHERE doc_key = $1",
      [id],
    );
    await w.tdb.db.query(
      "UPDATE troupe_datasets SET version = version + 1, name = 'νέο όνομα' WHERE id = $1",
      [id],
    );
    const stale = await call(`/api/v1/datasets/${id}/report.pdf`);
    assert.equal(stale.status, 202);
    assert.notEqual(stale.body.job.id, first[0]!.body.job.id);
    const next = await reportOf(id);
    assert.ok((await pdfText(next.pdf.bytes)).includes("νέο όνομα"));
    assert.equal(await reportJobs(), before + 2);
    const released = await w.tdb.db.query(
      "SELECT 1 FROM troupe_blob_refs WHERE sha256 = $1 AND owner_kind = 'document'",
      [v1!.sha256],
    );
    assert.equal(released.length, 0, "the stale report's file is no longer held");

    // Deleting the dataset drops its report and releases the blob.
    const [held] = await w.tdb.db.query<{ sha256: string }>(
      "SELECT sha256 FROM troupe_documents WHERE doc_key = $1",
      [id],
    );
    assert.ok(held);
    assert.equal((await call(`/api/v1/datasets/${id}`, { method: "DELETE" })).status, 204);
    assert.equal(await countRows(w.tdb.db, "troupe_documents"), 0);
    const refs = await w.tdb.db.query(
      "SELECT 1 FROM troupe_blob_refs WHERE sha256 = $1 AND owner_kind = 'document'",
      [held.sha256],
    );
    assert.equal(refs.length, 0);
  },
);

Deno.test({ name: "dataset report: a dataset that is not ready has none", ...opts }, async () => {
  const w = await open();
  const id = await readyDataset("a,b\n1,2\n", "plain");
  await w.tdb.db.query("UPDATE troupe_datasets SET status = 'merging' WHERE id = $1", [id]);
  const r = await call(`/api/v1/datasets/${id}/report.pdf`);
  assert.equal(r.status, 409);
  assert.equal(r.body.error.code, "CONFLICT");
});
