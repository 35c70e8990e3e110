/**
 * What tenants share without seeing each other, through `app.request()` with two tenants:
 * content-addressed files (one tenant's delete never takes another's bytes), the extracted
 * pages of a PDF (nobody can tell another uploaded it first) and actor keys (one tenant's long
 * job never holds another's). Runs with the embedded and the production drivers.
 */
import assert from "node:assert/strict";
import { courseActors } from "../actors/courses/pipeline.ts";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import type { JobView } from "@troupe/runtime";
import { cleanupActor } from "../actors/system/cleanup.ts";
import { echoActor } from "../actors/system/echo.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { makePdf, sentences } from "../tests/fixtures/pdfs.ts";
import { COURSE_ENDS, settledBody, waitFor } from "../tests/harness.ts";
import { localCourseAdapters, localDatasetAdapters } from "../tests/local_adapters.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;

interface World extends ApiWorld {
  a: { id: string; key: string };
  b: { id: string; key: string };
  blobs: BlobStore;
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-sharing-" });
    let blobs!: BlobStore;
    const w = await openApiWorld((tdb) => {
      blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
      return [
        ...datasetActors({ ...localDatasetAdapters(), db: tdb.db, blobs }),
        ...courseActors({ ...localCourseAdapters(tdb.db), db: tdb.db, blobs }),
        echoActor,
        // No grace: as if every run came long after the last upload.
        cleanupActor({
          db: tdb.db,
          retentionDays: 30,
          blobs: { store: blobs, db: tdb.db, graceMs: 0 },
        }),
      ];
    }, (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      datasets: { db: tdb.db, blobs, maxBytes: 2_000_000 },
      courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs, maxFileBytes: 2_000_000 },
    }));
    const make = async (name: string) => {
      const t = await w.tenants.createTenant(name);
      return { id: t.id, key: (await w.tenants.createKey(t.id)).key };
    };
    const close = w.close;
    return {
      ...w,
      a: await make("tenant-a"),
      b: await make("tenant-b"),
      blobs,
      async close() {
        await close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

async function call(
  path: string,
  key: string,
  init: RequestInit = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  const w = await open();
  const headers = new Headers(init.headers);
  headers.set("x-api-key", key);
  const res = await w.app.request(path, { ...init, headers });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function uploadCourse(key: string, bytes: Uint8Array, name = "book.pdf") {
  const form = new FormData();
  form.append("files", new File([new Uint8Array(bytes)], name, { type: "application/pdf" }));
  const req = new Request("http://x/", { method: "POST", body: form });
  const up = await call("/api/courses", key, {
    method: "POST",
    body: await req.arrayBuffer(),
    headers: { "content-type": req.headers.get("content-type")! },
  });
  assert.equal(up.status, 202, JSON.stringify(up.body));
  return up.body.courseId as string;
}

const settled = (key: string, id: string) =>
  settledBody(() => call(`/api/courses/${id}`, key), COURSE_ENDS, {
    timeoutMs: 60_000,
    what: `course ${id}`,
  });

/** Runs `system.cleanup` (here with no grace period) to its end. */
async function cleanup(): Promise<void> {
  const w = await open();
  const { job } = await w.runtime.enqueue("system.cleanup", {});
  await waitFor(async () => {
    const j = await w.runtime.getJob(job.id);
    if (j.status === "failed") throw new Error(JSON.stringify(j.error));
    return j.status === "succeeded";
  }, { timeoutMs: 30_000, what: "cleanup" });
}

async function jobsOf(key: string, actor: string): Promise<JobView[]> {
  const items: JobView[] = [];
  let cursor: string | null = null;
  do {
    const page = await call(
      `/api/jobs?actor=${actor}&limit=100${cursor ? `&cursor=${cursor}` : ""}`,
      key,
    );
    assert.equal(page.status, 200);
    items.push(...page.body.items);
    cursor = page.body.nextCursor;
  } while (cursor);
  return items;
}

const book = (marker: string) =>
  makePdf([
    { heading: "Cells", paragraphs: [sentences(`${marker}cells`, 8)] },
    { subheading: "Membranes", paragraphs: [sentences(`${marker}membrane`, 6)] },
    { heading: "Energy", paragraphs: [sentences(`${marker}energy`, 8)] },
  ]);

Deno.test({
  name: "sharing: a tenant deleting its course of another's PDF bytes leaves the other its file",
  ...opts,
}, async () => {
  const w = await open();
  const pdf = await book("kept");
  const courseId = await uploadCourse(w.b.key, pdf);
  const course = await settled(w.b.key, courseId);
  assert.equal(course.status, "ready", JSON.stringify(course));
  const sha = course.sources[0].sha256;

  // The same bytes sent as a "dataset" are refused before anything is stored.
  const asData = await call("/api/datasets?format=csv", w.a.key, {
    method: "POST",
    body: new Uint8Array(pdf),
    headers: { "content-type": "text/csv" },
  });
  assert.equal(asData.status, 415, JSON.stringify(asData.body));

  // Tenant A makes a course of the very same bytes, then deletes it.
  const aCourse = await settled(w.a.key, await uploadCourse(w.a.key, pdf, "mine.pdf"));
  assert.equal(aCourse.status, "ready", JSON.stringify(aCourse));
  assert.equal(aCourse.sources[0].sha256, sha, "one stored copy for both tenants");
  assert.equal(
    (await call(`/api/courses/${aCourse.id}`, w.a.key, { method: "DELETE" })).status,
    204,
  );
  await cleanup();
  assert.deepEqual(await w.blobs.bytes(sha), pdf, "b's course still has its file");

  // B's next course of the same file builds from it as before.
  const again = await settled(w.b.key, await uploadCourse(w.b.key, pdf, "again.pdf"));
  assert.equal(again.status, "ready", JSON.stringify(again));

  // The other way round: B deletes its courses; A's new course of the same bytes keeps them.
  const aCourse2 = await settled(w.a.key, await uploadCourse(w.a.key, pdf, "mine-again.pdf"));
  assert.equal(aCourse2.status, "ready", JSON.stringify(aCourse2));
  for (const id of [courseId, again.id]) {
    assert.equal((await call(`/api/courses/${id}`, w.b.key, { method: "DELETE" })).status, 204);
  }
  await cleanup();
  assert.deepEqual(await w.blobs.bytes(sha), pdf, "a's course still has its file");
  const pages = await w.tdb.db.query("SELECT 1 FROM troupe_pdf_pages WHERE sha256 = $1", [sha]);
  assert.ok(pages.length > 0, "pages of a held file stay");

  // Once nobody holds them, the bytes and their extracted pages go.
  assert.equal(
    (await call(`/api/courses/${aCourse2.id}`, w.a.key, { method: "DELETE" })).status,
    204,
  );
  await cleanup();
  assert.equal(await w.blobs.stat(sha), null);
  assert.equal(
    (await w.tdb.db.query("SELECT 1 FROM troupe_pdf_pages WHERE sha256 = $1", [sha])).length,
    0,
  );
});

Deno.test({
  name: "sharing: a tenant's job results for a PDF do not tell whether another uploaded it first",
  ...opts,
}, async () => {
  const w = await open();
  const seen = await book("seen");
  const fresh = await book("fresh");
  // A uploads `seen` first; nobody but B ever uploads `fresh`.
  assert.equal((await settled(w.a.key, await uploadCourse(w.a.key, seen))).status, "ready");
  const afterA = await settled(w.b.key, await uploadCourse(w.b.key, seen));
  const alone = await settled(w.b.key, await uploadCourse(w.b.key, fresh));
  assert.equal(afterA.status, "ready");
  assert.equal(alone.status, "ready");
  for (const actor of ["course.start", "course.extract", "course.extracted", "course.build"]) {
    const jobs = await jobsOf(w.b.key, actor);
    const of = (courseId: string) =>
      jobs.filter((j) => (j.input as { courseId: string }).courseId === courseId)
        .sort((x, y) => JSON.stringify(x.input).localeCompare(JSON.stringify(y.input)))
        .map((j) => ({ status: j.status, result: j.result, progress: j.progress }));
    assert.ok(of(alone.id).length > 0, actor);
    assert.deepEqual(of(afterA.id), of(alone.id), `${actor}: the same results`);
  }
  assert.deepEqual(afterA.progress, alone.progress);
});

Deno.test({
  name: "sharing: a course counts its own pages, not those another tenant stored for the same PDF",
  ...opts,
}, async () => {
  const w = await open();
  // 45 pages: three extract messages of 20, 20 and 5 pages.
  const long = await makePdf(
    Array.from({ length: 45 }, (_, i) => ({ paragraphs: [sentences(`long${i}page`, 3)] })),
  );
  assert.equal((await settled(w.a.key, await uploadCourse(w.a.key, long))).status, "ready");
  const course = await settled(w.b.key, await uploadCourse(w.b.key, long));
  assert.equal(course.status, "ready", JSON.stringify(course));
  assert.deepEqual(
    course.sources.map((s: { pageCount: number; status: string }) => [s.pageCount, s.status]),
    [[45, "done"]],
  );
  const mine = (jobs: JobView[]) =>
    jobs.filter((j) => (j.input as { courseId: string }).courseId === course.id);
  const extracts = mine(await jobsOf(w.b.key, "course.extract"));
  assert.deepEqual(
    extracts.map((j) => (j.result as { pages: number }).pages).sort((x, y) => x - y),
    [5, 20, 20],
  );
  const reports = mine(await jobsOf(w.b.key, "course.extracted"))
    .map((j) => j.result as { done: number; total: number })
    .sort((x, y) => x.done - y.done);
  assert.equal(reports.length, 3);
  assert.ok(reports.every((r) => r.total === 45));
  assert.equal(reports.filter((r) => r.done === 45).length, 1, "only the last range completes it");
  assert.ok(reports[0]!.done === 5 || reports[0]!.done === 20, JSON.stringify(reports));
});

Deno.test({
  name: "sharing: one tenant's long echo on a key does not hold another tenant's on that key",
  ...opts,
}, async () => {
  const w = await open();
  const enqueue = async (key: string, input: unknown) => {
    const res = await call("/api/actors/system.echo/jobs", key, {
      method: "POST",
      body: JSON.stringify({ input }),
      headers: { "content-type": "application/json" },
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.jobId as string;
  };
  const status = async (key: string, id: string) => (await call(`/api/jobs/${id}`, key)).body;
  for (const input of [{ key: "shared" }, {}]) {
    const long = await enqueue(w.a.key, { ...input, ms: 20_000 });
    await waitFor(async () => (await status(w.a.key, long)).status === "running", {
      timeoutMs: 20_000,
      what: "a's echo to start",
    });
    // B names A's tenant in its input too: the API puts B's own there.
    const quick = await enqueue(w.b.key, { ...input, message: "b", tenantId: w.a.id });
    const done = await waitFor(async () => {
      const j = await status(w.b.key, quick);
      return j.status === "succeeded" ? j : null;
    }, { timeoutMs: 15_000, what: "b's echo to finish while a's runs" });
    assert.equal(done.result.message, "b");
    assert.equal((await status(w.a.key, long)).status, "running", "a's echo still runs");
    assert.notEqual(done.key, (await status(w.a.key, long)).key);
    assert.equal((await call(`/api/jobs/${long}/cancel`, w.a.key, { method: "POST" })).status, 200);
  }
  // A tenant's own echoes on one key still run one at a time.
  const first = await enqueue(w.b.key, { key: "mine", ms: 600 });
  const second = await enqueue(w.b.key, { key: "mine" });
  const [x, y] = await waitFor(async () => {
    const [x, y] = [await status(w.b.key, first), await status(w.b.key, second)];
    return x.status === "succeeded" && y.status === "succeeded" ? [x, y] : null;
  }, { timeoutMs: 20_000, what: "b's echoes" });
  assert.ok(Date.parse(y.startedAt) >= Date.parse(x.finishedAt), "second after first");
});

Deno.test({
  name: "sharing: PDF extraction keys are the tenant's own",
  ...opts,
}, async () => {
  const w = await open();
  const pdf = await book("keys");
  const courseA = await uploadCourse(w.a.key, pdf);
  const courseB = await uploadCourse(w.b.key, pdf);
  await settled(w.a.key, courseA);
  await settled(w.b.key, courseB);
  const keyOf = async (key: string, courseId: string) =>
    (await jobsOf(key, "course.extract")).find((j) =>
      (j.input as { courseId: string }).courseId === courseId
    )!.key;
  const [ka, kb] = [await keyOf(w.a.key, courseA), await keyOf(w.b.key, courseB)];
  assert.notEqual(ka, kb, "a's extraction cannot hold b's");
  assert.ok(ka.includes(w.a.id) && kb.includes(w.b.id), `${ka} / ${kb}`);
});
