/**
 * `course.build` in steps: with a budget so small that every delivery takes one item, a course
 * is built in one delivery per lesson, one per batch of passages and one to make the course,
 * and ends exactly as a build in one delivery does; under every fault of the fault kit the
 * stepped build loses and repeats nothing.
 */
import assert from "node:assert/strict";
import { assertEffectivelyOnce, type TestWorld, testWorld } from "@troupe/runtime/testing";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { MIGRATION_SETS } from "../../db/migrate.ts";
import { makePdf, sentences } from "../../tests/fixtures/pdfs.ts";
import { localCourseAdapters } from "../../tests/local_adapters.ts";
import { courseActors } from "./pipeline.ts";
import { InlineExtractor, type PageExtractor } from "./extract.ts";
import { insertCourse, insertCourseSources } from "./store.ts";
import type { SqlDatabase } from "@troupe/runtime";

const COURSE = "0190a4b2-7c1d-7e4f-8a2b-3c4d5e6f7a8b";
const BATCH = 4;

/** A book of 3 chapters of 2 sections, each section a page or two of text. */
async function book(): Promise<Uint8Array> {
  const pages = [];
  const outline = [];
  for (let c = 1; c <= 3; c++) {
    outline.push({ title: `${c} Chapter ${c}`, page: pages.length + 1, level: 1 });
    for (let s = 1; s <= 2; s++) {
      const title = `${c}.${s} Section ${c}.${s}`;
      outline.push({ title, page: pages.length + 1, level: 2 });
      pages.push({
        opening: [{ text: title, size: 14 }],
        paragraphs: [sentences(`item${c}x${s}`, 24)],
      });
      pages.push({ paragraphs: [sentences(`more${c}x${s}`, 30)] });
    }
  }
  return await makePdf(pages, { outline });
}

/** The course's start message, its rows inserted with it. */
function startInput(put: { sha256: string; size: number }) {
  return {
    actor: "course.start",
    input: { courseId: COURSE },
    options: {
      effect: async (tx: Parameters<typeof insertCourse>[0], jobId: string) => {
        await insertCourse(tx, { id: COURSE, tenantId: "t-steps", title: "Steps", jobId });
        await insertCourseSources(tx, COURSE, [{ fileName: "book.pdf", ...put }]);
      },
    },
  };
}

function actors(blobs: BlobStore, extractor: PageExtractor, deliveryBudgetMs: number) {
  return (db: SqlDatabase) =>
    courseActors({
      ...localCourseAdapters(db),
      extractor,
      db,
      blobs,
      deliveryBudgetMs,
      embedBatch: BATCH,
    });
}

/** What a build leaves: the course, its passages and their vectors. */
async function builtCourse(world: Pick<TestWorld, "db">) {
  return {
    course: await world.db.query(
      "SELECT status, structure, error FROM troupe_courses WHERE id = $1",
      [COURSE],
    ),
    sources: await world.db.query(
      "SELECT idx, status, error FROM troupe_course_sources WHERE course_id = $1",
      [COURSE],
    ),
    chunks: await world.db.query(
      `SELECT id, source_idx, page_from, page_to, section, text, lexemes::text AS lexemes
       FROM troupe_course_chunks WHERE course_id = $1 ORDER BY id`,
      [COURSE],
    ),
    vectors: await world.db.query(
      "SELECT id, vector FROM troupe_course_vectors WHERE course_id = $1 ORDER BY id",
      [COURSE],
    ),
  };
}

/** The book stored in a blob store, and an extractor (closed after `fn`: it keeps PDFs open). */
async function withBlobs<T>(
  fn: (blobs: BlobStore, put: { sha256: string; size: number }, extractor: PageExtractor) => T,
) {
  const dir = await Deno.makeTempDir({ prefix: "troupe-build-steps-" });
  const extractor = new InlineExtractor();
  try {
    const blobs = new FsBlobStore(dir);
    const put = await blobs.put(new Blob([(await book()) as Uint8Array<ArrayBuffer>]).stream());
    return await fn(blobs, put, extractor);
  } finally {
    extractor.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Builds the course with `budgetMs`: what it made, and how many deliveries the build took. */
async function build(
  blobs: BlobStore,
  put: { sha256: string; size: number },
  extractor: PageExtractor,
  budgetMs: number,
) {
  const world = await testWorld({
    actors: actors(blobs, extractor, budgetMs),
    migrations: MIGRATION_SETS,
  });
  try {
    const start = startInput(put);
    await world.send(start.actor, start.input, start.options);
    await world.settle({ timeoutMs: 60_000 });
    const [jobs] = await world.db.query<{ n: number; succeeded: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded
       FROM troupe_jobs WHERE actor = 'course.build'`,
    );
    return {
      built: await builtCourse(world),
      jobs: jobs!,
      state: await world.state(`course:${COURSE}`),
    };
  } finally {
    await world.close();
  }
}

Deno.test({
  name: "course.build: a build in a delivery per item makes the course one delivery makes",
}, async () => {
  await withBlobs(async (blobs, put, extractor) => {
    const whole = await build(blobs, put, extractor, 0);
    const stepped = await build(blobs, put, extractor, 1);
    const modules = (whole.built.course[0]!.structure as {
      modules: { lessons: unknown[] }[];
    }).modules;
    const lessons = modules.reduce((n, m) => n + m.lessons.length, 0);
    const chunks = whole.built.chunks.length;
    assert.equal(whole.built.course[0]!.status, "ready");
    assert.ok(lessons >= 6, `${lessons} lessons`);
    assert.ok(chunks > 2 * BATCH, `${chunks} passages`);
    assert.equal(whole.built.vectors.length, chunks);
    assert.deepEqual(whole.jobs, { n: 1, succeeded: 1 });
    // One delivery a lesson, one a batch of passages, one to make the course.
    const steps = lessons + Math.ceil(chunks / BATCH) + 1;
    assert.deepEqual(stepped.jobs, { n: steps, succeeded: steps });
    assert.deepEqual(stepped.built, whole.built);
    // The lessons handed from step to step are gone once the course is made.
    assert.deepEqual(stepped.state, {});
  });
});

Deno.test({
  name: "course.build: in steps, under every fault, nothing is lost or done twice",
}, async () => {
  await withBlobs(async (blobs, put, extractor) => {
    const { effects } = await assertEffectivelyOnce({
      actors: actors(blobs, extractor, 1),
      migrations: MIGRATION_SETS,
      inputs: [startInput(put)],
      effectsOf: builtCourse,
      faults: [
        "deliverTwice",
        "deliverConcurrently",
        "crashBeforeCommit",
        "crashAfterCommit",
        "loseLeaseMidHandler",
      ],
    });
    const built = effects as Awaited<ReturnType<typeof builtCourse>>;
    assert.equal(built.course[0]?.status, "ready");
    assert.ok(built.chunks.length > 2 * BATCH, `${built.chunks.length} passages`);
    assert.equal(built.vectors.length, built.chunks.length);
  });
});
