/**
 * A course whose page extraction was running in a process that stopped, on its last attempt,
 * ends `failed` instead of staying `processing`: the reaper's dead letter calls the extract
 * actor's `onDeadLetter`, which fails the file and, with no other file, the course.
 */
import assert from "node:assert/strict";
import { courseActors } from "../actors/courses/pipeline.ts";
import { InlineExtractor, type PdfSource } from "../actors/courses/extract.ts";
import type { PageText } from "../actors/courses/pdf.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, openApiWorld } from "../tests/api_world.ts";
import { waitFor } from "../tests/harness.ts";
import { makePdf, sentences } from "../tests/fixtures/pdfs.ts";
import { localCourseAdapters } from "../tests/local_adapters.ts";

/** The real extractor, but page ranges never finish until `release()`: a stuck process. */
class StuckExtractor extends InlineExtractor {
  readonly #stuck = Promise.withResolvers<void>();
  started = 0;
  override async pages(source: PdfSource, from: number, to: number, key?: string) {
    this.started++;
    await this.#stuck.promise;
    return await super.pages(source, from, to, key) as PageText[];
  }
  release(): void {
    this.#stuck.resolve();
  }
}

Deno.test({
  name: "a course whose extraction's process stopped on its last attempt fails, not hangs",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-courses-expired-" });
  const extractor = new StuckExtractor();
  let blobs!: BlobStore;
  const w = await openApiWorld((tdb) => {
    blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
    return courseActors({ ...localCourseAdapters(tdb.db), db: tdb.db, blobs, extractor });
  }, (tdb) => ({
    perIpPerMinute: 1_000_000,
    perKeyPerMinute: 1_000_000,
    courses: {
      ...localCourseAdapters(tdb.db),
      db: tdb.db,
      blobs,
      maxFileBytes: 2_000_000,
      maxFiles: 2,
    },
  }));
  try {
    const key = (await w.tenants.createKey((await w.tenants.createTenant("school")).id)).key;
    const pdf = await makePdf([{ heading: "Cells", paragraphs: [sentences("cell", 12)] }]);
    const form = new FormData();
    form.append("title", "Biology");
    form.append("files", new File([new Uint8Array(pdf)], "bio.pdf", { type: "application/pdf" }));
    const req = new Request("http://x/", { method: "POST", body: form });
    const res = await w.app.request("/api/courses", {
      method: "POST",
      headers: { "x-api-key": key, "content-type": req.headers.get("content-type")! },
      body: await req.arrayBuffer(),
    });
    assert.equal(res.status, 202);
    const { courseId } = await res.json();
    const db = w.tdb.db;
    const job = await waitFor(async () => {
      const rows = await db.query<{ id: string; key: string }>(
        "SELECT id, key FROM troupe_jobs WHERE actor = 'course.extract' AND status = 'running'",
      );
      return extractor.started > 0 ? rows[0] : null;
    }, { what: "the extraction to be running" });

    // What a process that stopped on the job's last attempt leaves behind: the job still marked
    // running, out of attempts, and its key's lease gone to nobody (a new fence, so this
    // process's heartbeat cannot renew it either).
    await db.query("UPDATE troupe_jobs SET attempts = max_attempts WHERE id = $1", [job.id]);
    await db.query(
      `UPDATE troupe_actor_state SET fence = fence + 1, lease_owner = NULL,
         lease_until = now() - interval '1 second' WHERE key = $1`,
      [job.key],
    );
    await w.runtime.reap();

    const course = await waitFor(async () => {
      const r = await w.app.request(`/api/courses/${courseId}`, { headers: { "x-api-key": key } });
      const body = await r.json();
      return body.status === "processing" ? null : body;
    }, { timeoutMs: 20_000, what: "the course to leave processing" });
    assert.equal(course.status, "failed", JSON.stringify(course));
    const [dead] = await db.query<{ error: { code: string } }>(
      "SELECT error FROM troupe_dead_letters WHERE job_id = $1",
      [job.id],
    );
    assert.equal(dead?.error.code, "LEASE_EXPIRED");
  } finally {
    extractor.release();
    await w.close();
    extractor.close();
    await Deno.remove(dir, { recursive: true });
  }
});
