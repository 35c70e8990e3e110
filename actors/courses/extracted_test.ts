/**
 * `course.extracted` counts each file's pages as the key's previous message left them: its
 * messages run one after another, and the next may run before the one before it has
 * committed (a chain), so the count lives in the actor's state, never only in a table. (The
 * in-memory world serializes its queries, so a stale read shows only on PostgreSQL:
 * `bench/deliveries.ts --db postgres` built no course before the count moved to the state.)
 */
import assert from "node:assert/strict";
import { testWorld } from "@troupe/runtime/testing";
import type { SqlDatabase } from "@troupe/runtime";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import { MIGRATION_SETS } from "../../db/migrate.ts";
import { localCourseAdapters } from "../../tests/local_adapters.ts";
import { courseActors } from "./pipeline.ts";
import { insertCourse, insertCourseSources } from "./store.ts";

const COURSE = "0190a4b2-7c1d-7e4f-8a2b-3c4d5e6f7a8c";

Deno.test({
  name:
    "course.extracted: reports of one course run together count every page, and the last sends the build",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-extracted-" });
  const world = await testWorld({
    actors: (db: SqlDatabase) =>
      courseActors({ ...localCourseAdapters(db), db, blobs: new FsBlobStore(dir) }),
    migrations: MIGRATION_SETS,
  });
  try {
    const files = [0, 1].map((i) => ({
      fileName: `f${i}.pdf`,
      sha256: `${i}`.repeat(64),
      size: 1,
    }));
    await world.db.transaction(async (tx) => {
      await insertCourse(tx, { id: COURSE, tenantId: "t", title: "T", jobId: "j" });
      await insertCourseSources(tx, COURSE, files);
      await tx.query(
        `UPDATE troupe_course_sources SET page_count = 60, status = 'extracting'
         WHERE course_id = $1`,
        [COURSE],
      );
    });
    // Three ranges of file 0, one failed range of file 1: queued together, run as one chain.
    for (let i = 0; i < 3; i++) {
      await world.send("course.extracted", { courseId: COURSE, idx: 0, pages: 20 });
    }
    await world.send("course.extracted", {
      courseId: COURSE,
      idx: 1,
      failed: { code: "PDF_TOO_COMPLEX", message: "too complex" },
    });
    await world.settle();
    const sources = await world.db.query<{ idx: number; pages_done: number; status: string }>(
      "SELECT idx, pages_done, status FROM troupe_course_sources WHERE course_id = $1 ORDER BY idx",
      [COURSE],
    );
    assert.equal(sources[0]!.pages_done, 60, "every range of file 0 counted");
    assert.equal(sources[1]!.status, "failed");
    const builds = await world.db.query(
      "SELECT id FROM troupe_jobs WHERE actor = 'course.build'",
    );
    assert.equal(builds.length, 1, "the last report sends the build");
  } finally {
    await world.close();
    await Deno.remove(dir, { recursive: true });
  }
});
