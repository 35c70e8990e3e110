/**
 * The course workload end to end through `app.request()`: PDFs generated with pdf-lib
 * (known text on known pages, with and without an outline, blank, encrypted, corrupt),
 * uploaded, extracted once per file content, built into modules and lessons, searched; bad
 * uploads refused. Runs with the embedded and the production drivers.
 */
import assert from "node:assert/strict";
import { InlineExtractor, type PdfSource } from "../actors/courses/extract.ts";
import { courseActors } from "../actors/courses/pipeline.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { pdfText } from "../actors/documents/testing.ts";
import { encryptedPdf, makePdf, sentences, typesetBook } from "../tests/fixtures/pdfs.ts";
import {
  countBlobs,
  countRows,
  COURSE_ENDS,
  parseSse,
  settledBody,
  stalledBody,
  waitFor,
  within,
} from "../tests/harness.ts";
import { hugeFieldForm, part } from "../tests/hostile/http_attacks.ts";
import { sameText } from "../actors/courses/distinct.ts";
import type { SqlExecutor } from "@troupe/runtime";
import { localCourseAdapters } from "../tests/local_adapters.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;

interface World extends ApiWorld {
  key: string;
  otherKey: string;
  /** The page ranges the pipeline's extractor was asked for, by file. */
  extracted: Map<string, number>;
  extractor: CountingExtractor;
  /** What is kept of uploads: courses, jobs, blobs. */
  kept(): Promise<{ courses: number; jobs: number; blobs: number }>;
}

/** The real extractor, counting the page ranges it extracts per file. */
class CountingExtractor extends InlineExtractor {
  readonly ranges = new Map<string, number>();
  /** While set, reading a file's structure (`course.start`) waits for it; `held` hears of it. */
  hold: { until: Promise<void>; held: () => void } | null = null;
  override async structure(source: PdfSource, key?: string) {
    if (this.hold) {
      this.hold.held();
      await this.hold.until;
    }
    return await super.structure(source, key);
  }
  override pages(source: PdfSource, from: number, to: number, key?: string) {
    if (key) this.ranges.set(key, (this.ranges.get(key) ?? 0) + 1);
    return super.pages(source, from, to, key);
  }
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-courses-" });
    let blobs!: BlobStore;
    const extractor = new CountingExtractor();
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
        maxFiles: 4,
        uploads: { idleMs: 1000, maxFieldBytes: 4096 },
      },
    }));
    const key = (await w.tenants.createKey((await w.tenants.createTenant("school")).id)).key;
    const otherKey = (await w.tenants.createKey((await w.tenants.createTenant("other")).id)).key;
    const close = w.close;
    return {
      ...w,
      key,
      otherKey,
      extracted: extractor.ranges,
      extractor,
      async kept() {
        return {
          courses: await countRows(w.tdb.db, "troupe_courses"),
          jobs: await countRows(w.tdb.db, "troupe_jobs"),
          blobs: await countBlobs(blobs, w.tdb.db, dir),
        };
      },
      async close() {
        await close();
        extractor.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

async function call(
  path: string,
  init: RequestInit & { key?: string } = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  const w = await open();
  const headers = new Headers(init.headers);
  headers.set("x-api-key", init.key ?? w.key);
  const res = await w.app.request(path, { ...init, headers });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function upload(files: { name: string; bytes: Uint8Array }[], title?: string, key?: string) {
  const form = new FormData();
  if (title) form.append("title", title);
  for (const f of files) {
    form.append("files", new File([new Uint8Array(f.bytes)], f.name, { type: "application/pdf" }));
  }
  const req = new Request("http://x/", { method: "POST", body: form });
  return await call("/api/courses", {
    method: "POST",
    body: await req.arrayBuffer(),
    headers: { "content-type": req.headers.get("content-type")! },
    ...(key ? { key } : {}),
  });
}

const settled = (id: string) =>
  settledBody(() => call(`/api/courses/${id}`), COURSE_ENDS, { what: `course ${id}` });

const textbook = () =>
  makePdf([
    // The chapter's own text is a lesson too ("cell": a plural's word pieces would bring it
    // nearer the plural queries below, under the hashing embedder, than the page they seek).
    { heading: "Cells", paragraphs: [sentences("cell", 8)] },
    {
      subheading: "Membranes",
      paragraphs: [
        "The zebrafish quokka membrane is a rare term found on page two.",
        sentences("membrane", 6),
      ],
    },
    { subheading: "Organelles", paragraphs: [sentences("organelle", 8)] },
    { heading: "Energy", paragraphs: [sentences("energy", 8)] },
    { subheading: "Photosynthesis", paragraphs: [sentences("photosynthesis", 8)] },
  ], {
    outline: [
      {
        title: "Cells",
        page: 1,
        children: [{ title: "Membranes", page: 2 }, { title: "Organelles", page: 3 }],
      },
      { title: "Energy", page: 4, children: [{ title: "Photosynthesis", page: 5 }] },
    ],
  });

/**
 * Three chapters with the same three sections ("Overview" and "Summary" on the chapter's
 * page, "Exercises" on the next), each destination at its heading.
 */
const sameTitles = () => {
  const chapters = ["Rivers", "Deserts", "Forests"];
  return makePdf(
    chapters.flatMap((c) => [
      {
        heading: c,
        sections: [
          { heading: "Overview", paragraphs: [sentences(`${c}view`, 4)] },
          { heading: "Summary", paragraphs: [sentences(`${c}sum`, 4)] },
        ],
      },
      { sections: [{ heading: "Exercises", paragraphs: [sentences(`${c}drill`, 4)] }] },
    ]),
    {
      outline: chapters.map((c, i) => ({
        title: c,
        page: 2 * i + 1,
        top: "heading",
        children: [
          { title: "Overview", page: 2 * i + 1, top: "heading" },
          { title: "Summary", page: 2 * i + 1, top: "heading" },
          { title: "Exercises", page: 2 * i + 2, top: "heading" },
        ],
      })),
    },
  );
};

interface CourseBody {
  modules: {
    title: string;
    lessons: { title: string; summary: string; pages: number[]; quiz: { question: string }[] }[];
  }[];
}

/**
 * The same-titles course built: each chapter's three lessons, each with its own text, no two
 * sharing a summary or a question, one vector per passage.
 */
async function checkSameTitles(
  db: SqlExecutor,
  course: CourseBody & { id: string; status: string },
  vectors: () => Promise<number>,
) {
  assert.equal(course.status, "ready", JSON.stringify(course));
  assert.deepEqual(
    course.modules.map((m) => [m.title, m.lessons.map((l) => [l.title, l.pages])]),
    ["Rivers", "Deserts", "Forests"].map((c, i) => [c, [
      ["Overview", [2 * i + 1, 2 * i + 1]],
      ["Summary", [2 * i + 1, 2 * i + 1]],
      ["Exercises", [2 * i + 2, 2 * i + 2]],
    ]]),
  );
  const lessons = course.modules.flatMap((m) => m.lessons);
  for (const [i, l] of lessons.entries()) {
    for (const other of lessons.slice(i + 1)) {
      assert.ok(!sameText(l.summary, other.summary), `${l.title}: "${l.summary}"`);
    }
  }
  const questions = lessons.flatMap((l) => l.quiz.map((q) => q.question));
  assert.ok(questions.length > 0);
  for (const [i, q] of questions.entries()) {
    for (const other of questions.slice(i + 1)) assert.ok(!sameText(q, other), q);
  }
  const [chunks] = await db.query<{ n: number; sections: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT section)::int AS sections
     FROM troupe_course_chunks WHERE course_id = $1`,
    [course.id],
  );
  assert.deepEqual(chunks, { n: 9, sections: 3 }, "a passage per lesson, titles shared");
  assert.equal(await vectors(), 9, "one vector per passage");
}

Deno.test({
  name: "courses: chapters whose sections share titles build, each lesson its own",
  ...opts,
}, async () => {
  const w = await open();
  const up = await upload([{ name: "geo.pdf", bytes: await sameTitles() }]);
  assert.equal(up.status, 202, JSON.stringify(up.body));
  const course = await settled(up.body.courseId);
  await checkSameTitles(w.tdb.db, course, async () =>
    (await w.tdb.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM troupe_course_vectors WHERE course_id = $1",
      [course.id],
    ))[0]!.n);
});

Deno.test({
  name: "courses: pages stored by an older extraction are extracted again",
  ...opts,
}, async () => {
  const w = await open();
  const bytes = await makePdf([
    { heading: "Tides", paragraphs: [sentences("tide", 6)] },
    { heading: "Waves", paragraphs: [sentences("wave", 6)] },
  ]);
  const first = await settled((await upload([{ name: "sea.pdf", bytes }])).body.courseId);
  const sha = first.sources[0].sha256;
  assert.equal(w.extracted.get(sha), 1);
  // As an extraction of version 1 stored them: lines without their position.
  await w.tdb.db.query(
    `UPDATE troupe_pdf_pages SET version = 1, lines = (
       SELECT coalesce(jsonb_agg(l - 'y'), '[]'::jsonb) FROM jsonb_array_elements(lines) AS l)
     WHERE sha256 = $1`,
    [sha],
  );
  const second = await settled((await upload([{ name: "sea.pdf", bytes }])).body.courseId);
  assert.equal(second.status, "ready");
  assert.equal(w.extracted.get(sha), 2, "extracted again");
  const rows = await w.tdb.db.query<{ version: number; lines: { y?: number }[] }>(
    "SELECT version, lines FROM troupe_pdf_pages WHERE sha256 = $1 ORDER BY page",
    [sha],
  );
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.ok(r.version >= 2);
    assert.ok(r.lines.length > 0 && r.lines.every((l) => typeof l.y === "number"));
  }
  // Stored at the current version, it is not extracted a third time.
  await settled((await upload([{ name: "sea.pdf", bytes }])).body.courseId);
  assert.equal(w.extracted.get(sha), 2);
});

Deno.test({
  name: "courses: PDFs become modules, lessons and quizzes; search cites pages",
  ...opts,
}, async () => {
  const notes = await makePdf([
    { heading: "Lecture one", paragraphs: [sentences("lecture", 10)] },
    { paragraphs: [sentences("notes", 10)] },
  ]);
  const up = await upload([{ name: "biology.pdf", bytes: await textbook() }, {
    name: "notes.pdf",
    bytes: notes,
  }], "Biology 101");
  assert.equal(up.status, 202, JSON.stringify(up.body));
  const course = await settled(up.body.courseId);
  assert.equal(course.status, "ready", JSON.stringify(course));
  assert.equal(course.title, "Biology 101");
  assert.deepEqual(
    course.sources.map((
      s: { fileName: string; pageCount: number; status: string },
    ) => [s.fileName, s.pageCount, s.status]),
    [
      ["biology.pdf", 5, "done"],
      ["notes.pdf", 2, "done"],
    ],
  );
  const [cells, energy] = course.modules;
  assert.equal(cells.title, "Cells");
  assert.deepEqual(
    cells.lessons.map((l: { title: string; pages: number[] }) => [l.title, l.pages]),
    [
      ["Cells", [1, 1]],
      ["Membranes", [2, 2]],
      ["Organelles", [3, 3]],
    ],
  );
  assert.equal(energy.title, "Energy");
  for (const m of course.modules) {
    for (const l of m.lessons) {
      assert.ok(l.summary.length > 20, "a summary");
      assert.ok(
        l.keyPoints.length >= 3 && l.keyPoints.length <= 7,
        `${l.keyPoints.length} key points`,
      );
      for (const q of l.quiz) {
        assert.equal(q.choices.length, 4);
        assert.ok(q.page >= l.pages[0] && q.page <= l.pages[1], "the cited page is the lesson's");
      }
    }
  }
  assert.ok(
    course.modules.some((m: { lessons: { quiz: unknown[] }[] }) =>
      m.lessons.some((l) => l.quiz.length > 0)
    ),
  );

  const found = await call(`/api/courses/${course.id}/search?q=zebrafish%20quokka`);
  assert.equal(found.status, 200);
  assert.equal(found.body.results[0].fileName, "biology.pdf");
  assert.equal(found.body.results[0].page, 2);
  assert.equal(found.body.results[0].section, "Membranes");
  assert.equal((await call(`/api/courses/${course.id}/search?q=`)).status, 400);
  // A passage spanning pages 1-2 of notes.pdf: the page is the matching sentence's.
  const spanning = await call(`/api/courses/${course.id}/search?q=notes`);
  assert.equal(spanning.body.results[0].fileName, "notes.pdf");
  assert.equal(spanning.body.results[0].page, 2);
  const first = await call(`/api/courses/${course.id}/search?q=lecture`);
  assert.equal(first.body.results[0].page, 1);
  // Word variants full text (no stemming) misses: the embeddings' word pieces find them.
  const variants = await call(`/api/courses/${course.id}/search?q=zebrafishes%20quokkas`);
  assert.equal(variants.body.results[0].fileName, "biology.pdf");
  assert.equal(variants.body.results[0].page, 2);
  const w0 = await open();
  const counts = await w0.tdb.db.query<{ chunks: number; vectors: number }>(
    `SELECT (SELECT count(*)::int FROM troupe_course_chunks WHERE course_id = $1) AS chunks,
            (SELECT count(*)::int FROM troupe_course_vectors WHERE course_id = $1) AS vectors`,
    [course.id],
  );
  assert.ok(counts[0]!.chunks > 0);
  assert.equal(counts[0]!.vectors, counts[0]!.chunks, "one vector per passage");

  const ask = (question: string) =>
    call(`/api/courses/${course.id}/ask`, {
      method: "POST",
      body: JSON.stringify({ question }),
      headers: { "content-type": "application/json" },
    });
  const answered = await ask("What is the zebrafish quokka membrane?");
  assert.equal(answered.status, 200);
  assert.match(answered.body.answer, /zebrafish quokka membrane is a rare term/);
  assert.deepEqual(
    answered.body.citations.map((x: { fileName: string; page: number }) => [x.fileName, x.page])[0],
    ["biology.pdf", 2],
  );
  const unanswerable = await ask("Who won the football world cup in 1954?");
  assert.equal(unanswerable.body.answer, "The course text does not answer this question.");
  assert.deepEqual(unanswerable.body.citations, []);
  assert.equal((await ask("")).status, 400);

  const w = await open();
  const res = await w.app.request(`/api/courses/${course.id}/export.pdf`, {
    headers: { "x-api-key": w.key },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/pdf");
  const pdf = new Uint8Array(await res.arrayBuffer());
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/h.pdf`, pdf);
    const text = await new Deno.Command("pdftotext", {
      args: [`${dir}/h.pdf`, "-"],
      stdout: "piped",
    }).output();
    if (text.success) {
      const t = new TextDecoder().decode(text.stdout);
      for (const s of ["Biology 101", "Contents", "Membranes", "Key points", "Answer key"]) {
        assert.ok(t.includes(s), `the handbook shows ${s}`);
      }
    } else {
      assert.equal(new TextDecoder().decode(pdf.slice(0, 5)), "%PDF-");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal((await call(`/api/courses/${course.id}/cancel`, { method: "POST" })).status, 409);

  assert.equal(
    (await call(`/api/courses/${course.id}`, { key: (await open()).otherKey })).status,
    404,
  );
  assert.equal(
    (await call(`/api/courses/${course.id}/search?q=cells`, { key: (await open()).otherKey }))
      .status,
    404,
  );
  const list = await call("/api/courses");
  assert.ok(list.body.items.some((c: { id: string }) => c.id === course.id));
});

Deno.test(
  { name: "courses: a bad file fails alone with its code; the course is partial", ...opts },
  async () => {
    const good = await makePdf([{ heading: "Only chapter", paragraphs: [sentences("good", 10)] }]);
    const corrupt = new TextEncoder().encode("%PDF-1.7\n" + "garbage ".repeat(200));
    const blank = await makePdf([{ blank: true }, { blank: true }]);
    const up = await upload([
      { name: "good.pdf", bytes: good },
      { name: "locked.pdf", bytes: encryptedPdf() },
      { name: "broken.pdf", bytes: corrupt },
      { name: "scan.pdf", bytes: blank },
    ]);
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const course = await settled(up.body.courseId);
    assert.equal(course.status, "partial");
    const byName = Object.fromEntries(
      course.sources.map((s: { fileName: string }) => [s.fileName, s]),
    );
    assert.equal(byName["good.pdf"].status, "done");
    assert.equal(byName["locked.pdf"].error.code, "ENCRYPTED");
    assert.equal(byName["broken.pdf"].error.code, "CORRUPT");
    assert.equal(byName["scan.pdf"].error.code, "NO_TEXT");
    assert.equal(course.modules.length, 1);
  },
);

Deno.test({
  name: "courses: the same PDF twice is extracted once; delivered twice, same course",
  ...opts,
}, async () => {
  const w = await open();
  const bytes = await textbook();
  const a = await settled((await upload([{ name: "a.pdf", bytes }])).body.courseId);
  const b = await settled((await upload([{ name: "b.pdf", bytes }])).body.courseId);
  assert.equal(a.sources[0].sha256, b.sources[0].sha256);
  const pages = await w.tdb.db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_pdf_pages WHERE sha256 = $1",
    [a.sources[0].sha256],
  );
  assert.equal(pages[0]!.n, 5, "pages stored once");
  const extracts = await w.runtime.listJobs({ actor: "course.extract", limit: 100 });
  const forB = extracts.items.filter((j) => (j.input as { courseId: string }).courseId === b.id);
  assert.ok(forB.length > 0);
  assert.equal(w.extracted.get(a.sources[0].sha256), 1, "b reused a's pages");

  const chunks = async () =>
    (await w.tdb.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM troupe_course_chunks WHERE course_id = $1",
      [a.id],
    ))[0]!.n;
  const vectors = async () =>
    (await w.tdb.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM troupe_course_vectors WHERE course_id = $1",
      [a.id],
    ))[0]!.n;
  const before = await chunks();
  const beforeVectors = await vectors();
  const again = await w.runtime.enqueue("course.build", { courseId: a.id });
  await waitFor(async () => (await w.runtime.getJob(again.job.id)).status === "succeeded");
  assert.equal(await chunks(), before);
  assert.equal(await vectors(), beforeVectors, "delivered twice: the same vectors, no duplicates");
  assert.deepEqual((await call(`/api/courses/${a.id}`)).body.modules, a.modules);

  const del = await call(`/api/courses/${a.id}`, { method: "DELETE" });
  assert.equal(del.status, 204);
  assert.equal((await call(`/api/courses/${a.id}`)).status, 404);
  assert.equal(await chunks(), 0);
  assert.equal(await vectors(), 0, "deleting a course deletes its vectors");
  assert.equal(
    (await w.tdb.db.query("SELECT 1 FROM troupe_pdf_pages WHERE sha256 = $1", [
      a.sources[0].sha256,
    ])).length,
    5,
    "b still uses the pages",
  );
});

Deno.test(
  { name: "courses: non-Latin text and two-column pages go through", ...opts },
  async () => {
    const cyrillic = await makePdf([
      {
        heading: "Введение",
        paragraphs: ["Фотосинтез превращает свет в химическую энергию. Хлорофилл поглощает свет."],
      },
      {
        heading: "Дыхание",
        paragraphs: ["Митохондрии производят энергию клетки. Гликолиз расщепляет глюкозу."],
      },
    ], { unicode: true });
    const columns = await makePdf([{
      heading: "Two columns",
      columns: [["Left column talks about glaciers and moraines.", sentences("ice", 6)], [
        "Right column talks about volcanoes and magma.",
        sentences("lava", 6),
      ]],
    }]);
    const up = await upload([{ name: "ru.pdf", bytes: cyrillic }, {
      name: "cols.pdf",
      bytes: columns,
    }]);
    const course = await settled(up.body.courseId);
    assert.equal(course.status, "ready", JSON.stringify(course.sources));
    const ru = await call(
      `/api/courses/${course.id}/search?q=${encodeURIComponent("митохондрии")}`,
    );
    assert.equal(ru.body.results[0].fileName, "ru.pdf");
    assert.equal(ru.body.results[0].page, 2);
    const answer = await call(`/api/courses/${course.id}/ask`, {
      method: "POST",
      body: JSON.stringify({ question: "What does the right column talk about, volcanoes?" }),
      headers: { "content-type": "application/json" },
    });
    assert.match(answer.body.answer, /volcanoes and magma/);
    assert.equal(answer.body.citations[0].fileName, "cols.pdf");
    // The handbook prints the Cyrillic text, not question marks.
    const w = await open();
    const handbook = await w.app.request(`/api/courses/${course.id}/export.pdf`, {
      headers: { "x-api-key": w.key },
    });
    assert.equal(handbook.status, 200);
    const text = await pdfText(new Uint8Array(await handbook.arrayBuffer()));
    assert.match(text, /Введение/);
    assert.match(text, /Фотосинтез превращает свет/);
  },
);

/**
 * A world whose course builds wait in their first lesson until `release()`, with a textbook
 * uploaded by tenant `tenant` and its build running. `close()` releases it and removes all.
 */
async function heldBuild(tenant: string) {
  const { LocalWriter } = await import("../actors/courses/writer/local.ts");
  const held = new LocalWriter();
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const lesson = held.lesson.bind(held);
  held.lesson = async (...args) => {
    started.resolve();
    await release.promise;
    return await lesson(...args);
  };
  const dir = await Deno.makeTempDir();
  const blobs = new FsBlobStore(dir);
  // Closed with the world: it keeps a read PDF open for a while, for the next page range.
  const extractor = new InlineExtractor();
  const w = await openApiWorld(
    (tdb) =>
      courseActors({ ...localCourseAdapters(tdb.db), extractor, db: tdb.db, blobs, writer: held }),
    (tdb) => ({ courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs } }),
  );
  const close = async () => {
    release.resolve();
    await w.close();
    extractor.close();
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const key = (await w.tenants.createKey((await w.tenants.createTenant(tenant)).id)).key;
    const form = new FormData();
    form.append("files", new File([new Uint8Array(await textbook())], "t.pdf"));
    const req = new Request("http://x/", { method: "POST", body: form });
    const up = await (await w.app.request("/api/courses", {
      method: "POST",
      body: await req.arrayBuffer(),
      headers: { "content-type": req.headers.get("content-type")!, "x-api-key": key },
    })).json();
    await started.promise; // the build is running
    return { w, key, up, release: () => release.resolve(), close };
  } catch (err) {
    await close();
    throw err;
  }
}

Deno.test(
  { name: "courses: cancelling stops the pipeline, even mid-build", ...opts },
  async () => {
    const { w, key, up, release, close } = await heldBuild("cx");
    try {
      const cancel = await w.app.request(`/api/courses/${up.courseId}/cancel`, {
        method: "POST",
        headers: { "x-api-key": key },
      });
      assert.equal(cancel.status, 200);
      release();
      await waitFor(async () => {
        const open = await w.tdb.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM troupe_jobs WHERE actor LIKE 'course.%'
         AND status IN ('queued', 'running')`,
        );
        return open[0]!.n === 0;
      }, { timeoutMs: 20_000, what: "the course's messages to drain" });
      const course = await (await w.app.request(`/api/courses/${up.courseId}`, {
        headers: { "x-api-key": key },
      })).json();
      assert.equal(course.status, "cancelled", "the build did not overwrite the cancel");
      assert.deepEqual(course.modules, []);
      const again = await w.app.request(`/api/courses/${up.courseId}/cancel`, {
        method: "POST",
        headers: { "x-api-key": key },
      });
      assert.equal(again.status, 409);
    } finally {
      await close();
    }
  },
);

Deno.test({ name: "courses: bad uploads are refused and store nothing", ...opts }, async () => {
  const w = await open();
  const count = () => countRows(w.tdb.db, "troupe_courses");
  const before = await count();
  const good = await makePdf([{ heading: "x", paragraphs: ["y"] }]);
  const cases: [string, Promise<{ status: number; body: { error: { code: string } } }>, number][] =
    [
      [
        "not a PDF",
        upload([{ name: "x.pdf", bytes: new TextEncoder().encode("hello, not a pdf") }]),
        400,
      ],
      ["empty file", upload([{ name: "e.pdf", bytes: new Uint8Array(0) }]), 400],
      ["no files", upload([]), 400],
      [
        "too many",
        upload(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}.pdf`, bytes: good }))),
        400,
      ],
      [
        "too big",
        upload([{
          name: "big.pdf",
          bytes: new Uint8Array([
            ...new TextEncoder().encode("%PDF-1.7\n"),
            ...new Uint8Array(2_100_000),
          ]),
        }]),
        413,
      ],
    ];
  for (const [what, res, status] of cases) {
    const r = await res;
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    assert.ok(r.body.error.code, what);
  }
  const raw = await call("/api/courses", {
    method: "POST",
    body: "x",
    headers: { "content-type": "application/pdf" },
  });
  assert.equal(raw.status, 400);
  assert.equal(await count(), before);
});

Deno.test(
  { name: "courses: an upload whose client stops sending is a 408 and stores nothing", ...opts },
  async () => {
    const w = await open();
    const count = () => countRows(w.tdb.db, "troupe_courses");
    const before = await count();
    // The start of a multipart body with a PDF's first bytes, then silence (the world waits 1 s).
    const boundary = "----stalled0123456789";
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="files"; ` +
      `filename="a.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n${"x".repeat(5000)}`;
    const res = await within(
      call("/api/courses", {
        method: "POST",
        body: stalledBody(head).body,
        headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
      }),
      20_000,
      "no answer: the upload was not cut off",
    );
    assert.equal(res.status, 408, JSON.stringify(res.body));
    assert.equal(res.body.error.code, "UPLOAD_STALLED");
    assert.equal(await count(), before);
  },
);

Deno.test(
  { name: "courses: a title that never ends is a 413 as soon as it passes its limit", ...opts },
  async () => {
    const w = await open();
    const before = await w.kept();
    // Sent chunked (no Content-Length): an unknown field first (skipped, limited all the same),
    // then `title` growing forever; the PDF after it is never reached.
    for (const field of ["subtitle", "title"]) {
      const form = hugeFieldForm({
        field,
        before: part("note", "hello"),
        after: part("files", "%PDF-1.7\n", "a.pdf", "application/pdf"),
      });
      const res = await within(
        call("/api/courses", {
          method: "POST",
          body: form.body,
          headers: { "content-type": form.contentType },
        }),
        20_000,
        "no answer: the field was read on",
      );
      assert.equal(res.status, 413, JSON.stringify(res.body));
      assert.equal(res.body.error.code, "PAYLOAD_TOO_LARGE");
      assert.deepEqual(res.body.error.details, { field, limitBytes: 4096 });
      assert.ok(form.pulled() < 4096 + 4 * 65_536, `read ${form.pulled()} bytes of the body`);
    }
    assert.deepEqual(await w.kept(), before, "no course, job or blob");
  },
);

/** A small R-and-shell manual: short identifiers, a word used in another sense, repetitions. */
const manual = () => {
  const colony = Array.from(
    { length: 48 },
    (_, i) => `The quokka colony number ${i + 1} rests near the river at dusk.`,
  ).join(" ");
  const membrane = "Zebrafish plasma passes through the quokka membrane.";
  return makePdf([
    { heading: "Statistics in R", paragraphs: [sentences("intro", 8)] },
    {
      subheading: "Linear models",
      paragraphs: ["Fit a linear model with lm, as in lm(y ~ x).", sentences("linear", 6)],
    },
    {
      subheading: "Tests",
      paragraphs: ["The function t.test compares the means of two samples.", sentences("tests", 6)],
    },
    {
      subheading: "Shell",
      paragraphs: [
        "List the files in long format with ls -l in the shell.",
        "Programs written in C++ link against the library.",
        "Capital letters name constants in this manual.",
        sentences("shell", 4),
      ],
    },
    { subheading: "Colonies", paragraphs: [colony, membrane] },
    { subheading: "Membranes", paragraphs: [membrane, sentences("membrane", 4), membrane] },
  ], {
    outline: [{
      title: "Statistics in R",
      page: 1,
      children: ["Linear models", "Tests", "Shell", "Colonies", "Membranes"].map((title, i) => ({
        title,
        page: i + 2,
      })),
    }],
  });
};

let manualCourse: Promise<string> | undefined;
/** The manual's course id (uploaded once, ready). */
function manualCourseId(): Promise<string> {
  manualCourse ??= (async () => {
    const up = await upload([{ name: "manual.pdf", bytes: await manual() }]);
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const course = await settled(up.body.courseId);
    assert.equal(course.status, "ready", JSON.stringify(course));
    return course.id as string;
  })();
  return manualCourse;
}

async function searchManual(q: string, k = 5) {
  const id = await manualCourseId();
  return (await call(`/api/courses/${id}/search?k=${k}&q=${encodeURIComponent(q)}`)).body
    .results as { text: string; page: number; section: string; fileName: string; score: number }[];
}

async function askManual(question: string) {
  const id = await manualCourseId();
  return (await call(`/api/courses/${id}/ask`, {
    method: "POST",
    body: JSON.stringify({ question }),
    headers: { "content-type": "application/json" },
  })).body;
}

Deno.test(
  { name: "courses: search finds short identifiers and code words", ...opts },
  async () => {
    for (const [q, page] of [["lm", 2], ["t.test", 3], ["ls -l", 4], ["C++", 4]] as const) {
      const results = await searchManual(q);
      assert.equal(results[0]?.page, page, `${q}: ${JSON.stringify(results)}`);
      // Only passages that hold it.
      for (const r of results) assert.ok(r.text.includes(q), `${q} in ${r.text}`);
    }
  },
);

Deno.test(
  { name: "courses: search gives one result per page and section, best first", ...opts },
  async () => {
    // The colony page is cut into several passages: it is still one result.
    const colony = await searchManual("quokka colony river", 10);
    assert.ok(colony.length > 0);
    const places = colony.map((r) => `${r.fileName}:${r.page}:${r.section}`);
    assert.equal(new Set(places).size, places.length, places.join(", "));
    assert.equal(colony[0]!.page, 5);
    for (let i = 1; i < colony.length; i++) {
      assert.ok(colony[i - 1]!.score >= colony[i]!.score, "best first");
    }
  },
);

Deno.test(
  { name: "courses: a search nothing in the course matches finds nothing", ...opts },
  async () => {
    assert.deepEqual(await searchManual("xylophone zeppelin"), []);
  },
);

Deno.test(
  { name: "courses: ask does not answer what the course does not", ...opts },
  async () => {
    // "capital" is in the course, in another sense: the course does not answer this.
    const france = await askManual("What is the capital of France?");
    assert.equal(france.answered, false, JSON.stringify(france));
    assert.equal(france.answer, "The course text does not answer this question.");
    assert.deepEqual(france.citations, []);

    const tests = await askManual("What does t.test compare?");
    assert.equal(tests.answered, true, JSON.stringify(tests));
    assert.match(tests.answer, /t\.test compares the means/);
    assert.equal(tests.citations[0].page, 3);
  },
);

Deno.test(
  { name: "courses: ask says each sentence once and cites each page once", ...opts },
  async () => {
    // The sentence is on two pages (twice on one): it is said once, each page cited once.
    const membrane = await askManual("What passes through the quokka membrane?");
    const said = membrane.answer.split(/(?<=\.)\s+/);
    assert.equal(new Set(said).size, said.length, membrane.answer);
    assert.equal(
      said.filter((s: string) => s.includes("Zebrafish plasma")).length,
      1,
      membrane.answer,
    );
    const cited = membrane.citations.map((c: { fileName: string; page: number }) =>
      `${c.fileName}:${c.page}`
    );
    assert.equal(new Set(cited).size, cited.length, cited.join(", "));
    assert.ok(
      membrane.citations.some((c: { page: number }) => c.page === 5 || c.page === 6),
      JSON.stringify(membrane.citations),
    );
  },
);

/** Fields of a listing, `field<n> holds value <n>`, joined by commas (no sentence end). */
const listing = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `field${from + i} holds value ${from + i}`).join(", ");

/** The pages cited for `question` in a course of `pages`. */
async function citedPages(
  pages: Parameters<typeof makePdf>[0],
  options: Parameters<typeof makePdf>[1],
  question: string,
) {
  const up = await upload([{ name: "listing.pdf", bytes: await makePdf(pages, options) }]);
  assert.equal(up.status, 202, JSON.stringify(up.body));
  const course = await settled(up.body.courseId);
  assert.equal(course.status, "ready", JSON.stringify(course));
  const res = await call(`/api/courses/${course.id}/ask`, {
    method: "POST",
    body: JSON.stringify({ question }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.answered, true, JSON.stringify(res.body));
  return { answer: res.body.answer as string, citations: res.body.citations as Citation[] };
}

type Citation = { page: number; text: string };

Deno.test(
  { name: "courses: ask cites the page where a sentence across pages holds the answer", ...opts },
  async () => {
    // A listing without a sentence end runs from page 1 onto page 2, where the only words the
    // question asks about are: the answer is cited on page 2, not where the listing starts.
    const { answer, citations } = await citedPages(
      [
        {
          heading: "Listing",
          paragraphs: [`Here are the fields of the record, one after another: ${listing(1, 30)},`],
        },
        { paragraphs: [`${listing(31, 4)}, and the wombat routine erases the gazebo picture`] },
      ],
      {},
      "What does the wombat routine erase?",
    );
    assert.match(answer, /Here are the fields.*wombat routine erases/s);
    assert.deepEqual(citations.map((c) => c.page), [2], JSON.stringify(citations));
  },
);

Deno.test(
  { name: "courses: ask counts the section's heading on each page of a sentence", ...opts },
  async () => {
    // The asked words are on page 1 with the heading's, and on page 2 in the text: the heading
    // holds on both pages, so neither holds more and the answer stays on its first page.
    const { citations } = await citedPages(
      [
        {
          heading: "Gazebo pictures",
          paragraphs: [`The wombat routine erases the fields in turn: ${listing(1, 30)},`],
        },
        { paragraphs: [`${listing(31, 4)}, so the wombat routine erases gazebo pictures`] },
      ],
      { outline: [{ title: "Gazebo pictures", page: 1 }] },
      "What does the wombat routine erase in gazebo pictures?",
    );
    assert.deepEqual(citations.map((c) => c.page), [1], JSON.stringify(citations));
  },
);

async function jobEnd(jobId: string) {
  return await waitFor(async () => {
    const j = (await call(`/api/jobs/${jobId}`)).body;
    return ["succeeded", "failed", "cancelled"].includes(j.status) ? j : null;
  }, { timeoutMs: 30_000, what: `job ${jobId}` });
}

Deno.test(
  { name: "courses: the upload's job follows the course until it is built", ...opts },
  async () => {
    const w = await open();
    // The course is held in its first step while the event stream opens.
    const until = Promise.withResolvers<void>();
    const held = Promise.withResolvers<void>();
    w.extractor.hold = { until: until.promise, held: held.resolve };
    const up = await upload([{ name: "bio.pdf", bytes: await textbook() }], "Followed");
    assert.equal(up.status, 202, JSON.stringify(up.body));
    await held.promise;
    const res = await w.app.request(`/api/jobs/${up.body.jobId}/events`, {
      headers: { "x-api-key": w.key },
    });
    w.extractor.hold = null;
    until.resolve();
    const events = parseSse(await within(res.text(), 30_000, "events"));
    // The stream ended with the pipeline, once the course was built.
    const course = (await call(`/api/courses/${up.body.courseId}`)).body;
    assert.equal(course.status, "ready");
    assert.equal(events[0]!.data.kind, "pipeline");
    assert.equal(events[0]!.data.status, "running");
    const last = events.at(-1)!;
    assert.equal(last.event, "done");
    assert.equal(last.data.status, "succeeded");
    assert.deepEqual(last.data.pipeline, { done: 5, total: 5, unit: "pages" });
    assert.deepEqual(last.data.result, {
      courseId: course.id,
      status: "ready",
      modules: course.modules.length,
    });
    assert.ok(last.data.jobs.succeeded >= 4, JSON.stringify(last.data.jobs));
  },
);

Deno.test(
  { name: "courses: the upload's job fails with the course's error", ...opts },
  async () => {
    const locked = await upload([{ name: "locked.pdf", bytes: encryptedPdf() }]);
    assert.equal(locked.status, 202, JSON.stringify(locked.body));
    const job = await jobEnd(locked.body.jobId);
    const course = (await call(`/api/courses/${locked.body.courseId}`)).body;
    assert.equal(course.status, "failed");
    assert.equal(job.status, "failed");
    assert.equal(job.error.code, "ENCRYPTED");
    const corrupt = new TextEncoder().encode("%PDF-1.7\n" + "garbage ".repeat(200));
    const broken = await upload([{ name: "broken.pdf", bytes: corrupt }]);
    const failed = await jobEnd(broken.body.jobId);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error.code, "CORRUPT");
  },
);

Deno.test(
  { name: "courses: cancelling the upload's job cancels the course mid-build", ...opts },
  async () => {
    const { w, key, up, release, close } = await heldBuild("cj");
    try {
      const cancel = await w.app.request(`/api/jobs/${up.jobId}/cancel`, {
        method: "POST",
        headers: { "x-api-key": key },
      });
      assert.equal(cancel.status, 200);
      assert.equal((await cancel.json()).status, "cancelled");
      const course = await waitFor(async () => {
        const c = await (await w.app.request(`/api/courses/${up.courseId}`, {
          headers: { "x-api-key": key },
        })).json();
        return c.status === "cancelled" ? c : null;
      }, { what: "the course to be cancelled" });
      assert.deepEqual(course.modules, []);
      const readJob = async () =>
        await (await w.app.request(`/api/jobs/${up.jobId}`, {
          headers: { "x-api-key": key },
        })).json();
      // The running build was stopped: nothing of the pipeline is open, even once released.
      await waitFor(async () => (await readJob()).jobs.running === 0, {
        what: "the build to stop",
      });
      release();
      await new Promise((r) => setTimeout(r, 300));
      const job = await readJob();
      assert.equal(job.status, "cancelled");
      assert.equal(job.jobs.queued + job.jobs.running, 0, JSON.stringify(job.jobs));
      const after = await (await w.app.request(`/api/courses/${up.courseId}`, {
        headers: { "x-api-key": key },
      })).json();
      assert.equal(after.status, "cancelled", "the build did not overwrite the cancel");
      assert.deepEqual(after.modules, []);
    } finally {
      await close();
    }
  },
);

Deno.test({
  name: "courses: a typeset book: no furniture or back matter in lessons; without an outline " +
    "the title page is the title and numbered headings give modules",
  ...opts,
}, async () => {
  const plain = await typesetBook();
  const bookmarked = await typesetBook({
    outline: [
      { title: "Contents", page: 2 },
      { title: "1 Gears", page: 3, children: [{ title: "1.2 Ratios", page: 4 }] },
      { title: "2 Springs", page: 5, children: [{ title: "2.2 Tension", page: 6 }] },
      { title: "References", page: 7 },
      { title: "Index", page: 8 },
    ],
  });
  const up = await upload([
    { name: "plain.pdf", bytes: plain },
    { name: "bookmarked.pdf", bytes: bookmarked },
  ]);
  assert.equal(up.status, 202, JSON.stringify(up.body));
  const course = await settled(up.body.courseId);
  assert.equal(course.status, "ready", JSON.stringify(course));
  type L = { title: string; fileName: string; summary: string; keyPoints: string[] };
  const outline = course.modules.map((m: { title: string; lessons: L[] }) => [
    m.title,
    m.lessons.map((l) => `${l.fileName}: ${l.title}`),
  ]);
  assert.deepEqual(outline, [
    ["1 Gears", ["plain.pdf: 1.1 Teeth", "plain.pdf: 1.2 Ratios"]],
    ["2 Springs", ["plain.pdf: 2.1 Coils", "plain.pdf: 2.2 Tension"]],
    // A chapter's text before its first bookmarked section is its introduction lesson.
    ["1 Gears", ["bookmarked.pdf: 1 Gears", "bookmarked.pdf: 1.2 Ratios"]],
    ["2 Springs", ["bookmarked.pdf: 2 Springs", "bookmarked.pdf: 2.2 Tension"]],
  ]);
  const written = JSON.stringify(course.modules);
  for (const leak of [/Chapter \d: /, /Jane Q\. Public/, /March 2024/, /Programming with Data/]) {
    assert.doesNotMatch(written, leak);
  }
  const w = await open();
  const chunks = await w.tdb.db.query<{ text: string }>(
    "SELECT text FROM troupe_course_chunks WHERE course_id = $1",
    [course.id],
  );
  assert.ok(chunks.length > 0);
  for (const c of chunks) {
    assert.doesNotMatch(c.text, /Chapter \d: |\bcoil, 3\b|Springer|\bde- mand\b/, c.text);
  }
});

Deno.test(
  {
    name: "courses: a Flate bomb and a 100,000-deep outline fail as PDF_TOO_COMPLEX, " +
      "once, while the server keeps answering",
    ...opts,
  },
  async () => {
    const { WorkerExtractor } = await import("../actors/courses/extract.ts");
    const { deepOutline, flateBomb } = await import("../tests/hostile/pdf_files.ts");
    const dir = await Deno.makeTempDir();
    const blobs = API_DRIVERS === "production" ? null : new FsBlobStore(dir);
    // As `main.ts` runs it by default: extraction in a worker, under the default limits.
    const extractor = new WorkerExtractor(1);
    let store!: BlobStore;
    const w = await openApiWorld((tdb) => {
      store = blobs ?? new PostgresBlobStore(tdb.db);
      return courseActors({ ...localCourseAdapters(tdb.db), db: tdb.db, blobs: store, extractor });
    }, (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs: store, maxFileBytes: 32 << 20 },
    }));
    // The server's answers while the files are worked on: the slowest health check, in ms.
    let slowest = 0;
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const started = performance.now();
        const res = await w.app.request("/api/health");
        await res.body?.cancel();
        assert.equal(res.status, 200);
        slowest = Math.max(slowest, performance.now() - started);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const key = (await w.tenants.createKey((await w.tenants.createTenant("t")).id)).key;
      const hostile = [
        { name: "bomb.pdf", bytes: flateBomb() }, // 4 MB that inflate to 4 GB
        { name: "deep.pdf", bytes: deepOutline() }, // 14 MB, 100,000 levels
      ];
      for (const { name, bytes } of hostile) {
        const form = new FormData();
        form.append("files", new File([new Uint8Array(bytes)], name));
        const req = new Request("http://x/", { method: "POST", body: form });
        const up = await w.app.request("/api/courses", {
          method: "POST",
          body: await req.arrayBuffer(),
          headers: { "content-type": req.headers.get("content-type")!, "x-api-key": key },
        });
        assert.equal(up.status, 202, `${name}: ${await up.clone().text()}`);
        const { courseId } = await up.json();
        const course = await waitFor(async () => {
          const c = await (await w.app.request(`/api/courses/${courseId}`, {
            headers: { "x-api-key": key },
          })).json();
          return c.status === "failed" ? c : null;
        }, { timeoutMs: 60_000, what: `${name}'s course to fail` });
        assert.equal(course.error.code, "PDF_TOO_COMPLEX", name);
        assert.equal(course.sources[0].error.code, "PDF_TOO_COMPLEX", name);
        // Read once: no attempt again, and no page range sent to extract.
        const jobs = await w.tdb.db.query<{ actor: string; attempts: number }>(
          `SELECT actor, attempts FROM troupe_jobs WHERE input->>'courseId' = $1`,
          [courseId],
        );
        assert.deepEqual(
          jobs.filter((j) => j.actor.startsWith("course.start") || j.actor === "course.extract"),
          [{ actor: "course.start", attempts: 1 }],
          name,
        );
      }
      assert.ok(slowest < 1000, `health took ${Math.round(slowest)} ms at worst`);
    } finally {
      probing = false;
      await probe;
      extractor.close();
      await w.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  { name: "courses: a writer that keeps failing fails the course, not hangs it", ...opts },
  async () => {
    const { courseActors } = await import("../actors/courses/pipeline.ts");
    const { LocalWriter } = await import("../actors/courses/writer/local.ts");
    const broken = new LocalWriter();
    broken.lesson = () => Promise.reject(new Error("the model is down"));
    const dir = await Deno.makeTempDir();
    const blobs = new FsBlobStore(dir);
    const w = await openApiWorld(
      (tdb) =>
        courseActors({ ...localCourseAdapters(tdb.db), db: tdb.db, blobs, writer: broken }).map((
          a,
        ) => ({
          ...a,
          policy: { ...a.policy, maxAttempts: 1 },
        })),
      (tdb) => ({ courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs } }),
    );
    try {
      const key = (await w.tenants.createKey((await w.tenants.createTenant("t")).id)).key;
      const form = new FormData();
      form.append(
        "files",
        new File([
          new Uint8Array(await makePdf([{ heading: "A", paragraphs: [sentences("a", 5)] }])),
        ], "a.pdf"),
      );
      const req = new Request("http://x/", { method: "POST", body: form });
      const up = await (await w.app.request("/api/courses", {
        method: "POST",
        body: await req.arrayBuffer(),
        headers: { "content-type": req.headers.get("content-type")!, "x-api-key": key },
      })).json();
      const course = await waitFor(async () => {
        const c = await (await w.app.request(`/api/courses/${up.courseId}`, {
          headers: { "x-api-key": key },
        })).json();
        return c.status === "failed" ? c : null;
      }, { timeoutMs: 20_000, what: "the course to fail" });
      assert.match(course.error.message, /the model is down/);
    } finally {
      await w.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test({
  name: "courses: embeddings in ChromaDB (a real chroma run) serve hybrid search",
  ...opts,
}, async () => {
  const { startChroma } = await import("../tests/fixtures/chroma_server.ts");
  const { ChromaVectorStore } = await import("../actors/courses/vectors/chroma.ts");
  const chroma = await startChroma();
  const vectors = new ChromaVectorStore({
    url: chroma.url,
    collection: `courses_${crypto.randomUUID().slice(0, 8)}`,
  });
  const dir = await Deno.makeTempDir();
  const blobs = new FsBlobStore(dir);
  const w = await openApiWorld(
    (tdb) => courseActors({ ...localCourseAdapters(tdb.db), db: tdb.db, blobs, vectors }),
    (tdb) => ({ courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs, vectors } }),
  );
  try {
    const key = (await w.tenants.createKey((await w.tenants.createTenant("c")).id)).key;
    const form = new FormData();
    form.append("files", new File([new Uint8Array(await textbook())], "bio.pdf"));
    const req = new Request("http://x/", { method: "POST", body: form });
    const up = await (await w.app.request("/api/courses", {
      method: "POST",
      body: await req.arrayBuffer(),
      headers: { "content-type": req.headers.get("content-type")!, "x-api-key": key },
    })).json();
    const get = async (path: string) =>
      await (await w.app.request(path, { headers: { "x-api-key": key } })).json();
    await waitFor(async () => (await get(`/api/courses/${up.courseId}`)).status === "ready", {
      timeoutMs: 30_000,
    });
    const chunks = await w.tdb.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM troupe_course_chunks WHERE course_id = $1",
      [up.courseId],
    );
    assert.equal(
      await vectors.count({
        tenantId: (await w.tenants.authenticate(key))!.tenantId,
        courseId: up.courseId,
      }),
      chunks[0]!.n,
    );
    const found = await get(`/api/courses/${up.courseId}/search?q=zebrafishes%20quokkas`);
    assert.equal(found.results[0].page, 2, "found through Chroma's nearest neighbours");
    // Sections that share titles across chapters: their passages' ids differ in Chroma too.
    const form2 = new FormData();
    form2.append("files", new File([new Uint8Array(await sameTitles())], "geo.pdf"));
    const req2 = new Request("http://x/", { method: "POST", body: form2 });
    const geo = await (await w.app.request("/api/courses", {
      method: "POST",
      body: await req2.arrayBuffer(),
      headers: { "content-type": req2.headers.get("content-type")!, "x-api-key": key },
    })).json();
    const built = await waitFor(async () => {
      const c = await get(`/api/courses/${geo.courseId}`);
      return ["ready", "partial", "failed"].includes(c.status) ? c : null;
    }, { timeoutMs: 30_000 });
    const tenantId = (await w.tenants.authenticate(key))!.tenantId;
    await checkSameTitles(
      w.tdb.db,
      built,
      () => vectors.count({ tenantId, courseId: geo.courseId }),
    );
  } finally {
    await w.close();
    await chroma.close();
    await Deno.remove(dir, { recursive: true });
  }
});
