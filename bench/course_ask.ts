/**
 * Course answers and search against written question sets (`bench/course_questions/*.json`:
 * in-scope questions with the pages that answer them, out-of-scope questions, and search
 * phrases with their pages), on real books built through the real pipeline, embedded (PGlite,
 * table queue, local writer and hashing embedder), asked through the routes.
 *
 * - ask precision: of the questions answered (`answered: true`), the share that are in scope
 *   AND cite at least one of their expected pages;
 * - ask recall: of the in-scope questions, the share answered with at least one citation on an
 *   expected page;
 * - search hit@3: of the phrases, the share with an expected page among the first 3 results;
 * - the same ask precision and recall on the questions marked `"added": "holdout"` alone
 *   (written from pages the other questions do not use, after the answer rules were set).
 *
 * It also prints, per book, the answer threshold sweep (`minCoverage`: precision and recall
 * had it been the threshold, through the same `answerQuestion`) and the vector similarities
 * seen, which is how `RELEVANCE_DEFAULTS` were chosen: calibrated on R-intro, checked on
 * asymptote (see bench/README.md).
 *
 *   deno run -A bench/course_ask.ts [--book R-intro,asymptote]
 */
import { parseArgs } from "node:util";
import { courseActors } from "../actors/courses/pipeline.ts";
import {
  answerQuestion,
  RELEVANCE_DEFAULTS,
  type RelevanceOptions,
} from "../actors/courses/answer.ts";
import { HashingEmbedder } from "../actors/courses/embeddings/hashing.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import { PgVectorStore } from "../actors/courses/vectors/pg.ts";
import { openApiWorld } from "../tests/api_world.ts";
import { waitFor } from "../tests/harness.ts";
import { queryTokens, STOP_WORDS, wholeTokens } from "../actors/courses/lexicon.ts";
import { localCourseAdapters } from "../tests/local_adapters.ts";

export interface QuestionSet {
  book: string;
  source: string;
  /** `added: "holdout"` marks questions written after the thresholds and rules were set. */
  inScope: { question: string; pages: number[]; added?: string }[];
  outOfScope: { question: string; kind: string; added?: string }[];
  search: { phrase: string; pages: number[] }[];
}

export interface AskFigures {
  book: string;
  pages: number;
  inScope: number;
  outOfScope: number;
  phrases: number;
  /** Answered and correct / answered. */
  precision: number;
  /** Answered and correct / in scope. */
  recall: number;
  /** Out-of-scope questions answered anyway. */
  falseAnswers: number;
  /** Phrases with an expected page in the first 3 results. */
  hitAt3: number;
  /** The same figures on the questions marked `added: "holdout"` only. */
  holdout: { inScope: number; outOfScope: number; precision: number; recall: number };
  /** Per minimum coverage: precision and recall had it been the threshold. */
  sweep: { minCoverage: number; precision: number; recall: number }[];
  /** Largest vector similarity of each out-of-scope question and of each phrase's best hit. */
  similarity: { outOfScopeMax: number[]; phraseBest: number[] };
  misses: { asked: string[]; wronglyAnswered: string[]; search: string[] };
  thresholds: Required<RelevanceOptions>;
}

const KEY_HEADERS = (key: string) => ({ "x-api-key": key });

/** Builds the book's course embedded and runs the question set through the routes. */
export async function askFigures(
  pdfPath: string,
  questionsPath: string,
  options: RelevanceOptions = {},
): Promise<AskFigures> {
  const set = JSON.parse(await Deno.readTextFile(questionsPath)) as QuestionSet;
  const thresholds = { ...RELEVANCE_DEFAULTS, ...options };
  const dir = await Deno.makeTempDir({ prefix: "troupe-course-ask-" });
  const blobs = new FsBlobStore(dir);
  const world = await openApiWorld(
    (tdb) => courseActors({ ...localCourseAdapters(tdb.db), db: tdb.db, blobs }),
    (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      courses: { ...localCourseAdapters(tdb.db), db: tdb.db, blobs },
    }),
  );
  try {
    const tenant = await world.tenants.createTenant("bench");
    const key = (await world.tenants.createKey(tenant.id)).key;
    const form = new FormData();
    const bytes = await Deno.readFile(pdfPath);
    const fileName = pdfPath.split("/").at(-1)!;
    form.append("files", new File([bytes], fileName, { type: "application/pdf" }));
    const req = new Request("http://x/", { method: "POST", body: form });
    const up = await world.app.request("/api/courses", {
      method: "POST",
      body: await req.arrayBuffer(),
      headers: { ...KEY_HEADERS(key), "content-type": req.headers.get("content-type")! },
    });
    const { courseId } = await up.json();
    const course = await waitFor(async () => {
      const c = await (await world.app.request(`/api/courses/${courseId}`, {
        headers: KEY_HEADERS(key),
      })).json();
      return c.status === "processing" ? null : c;
    }, { timeoutMs: 600_000, what: `course of ${fileName}` });
    if (course.status !== "ready") throw new Error(`${fileName}: ${JSON.stringify(course)}`);

    const ask = async (question: string) =>
      await (await world.app.request(`/api/courses/${courseId}/ask`, {
        method: "POST",
        headers: { ...KEY_HEADERS(key), "content-type": "application/json" },
        body: JSON.stringify({ question }),
      })).json() as {
        answered: boolean;
        citations: { page: number }[];
      };
    const db = world.tdb.db;
    const vectors = new PgVectorStore(db);
    const embedder = new HashingEmbedder();
    const direct = async (question: string, minCoverage: number) =>
      await answerQuestion(db, vectors, embedder, courseId, tenant.id, question, {
        ...thresholds,
        minCoverage,
      });

    let answered = 0;
    let correct = 0;
    let falseAnswers = 0;
    const held = { inScope: 0, outOfScope: 0, answered: 0, correct: 0 };
    const misses = {
      asked: [] as string[],
      wronglyAnswered: [] as string[],
      search: [] as string[],
    };
    // Each question's coverage (with no threshold), for the sweep.
    const points: { question: string; coverage: number; pages: number[] | null }[] = [];
    for (const q of set.inScope) {
      const a = await ask(q.question);
      const right = a.answered && a.citations.some((c) => q.pages.includes(c.page));
      if (a.answered) answered++;
      if (right) correct++;
      if (q.added === "holdout") {
        held.inScope++;
        if (a.answered) held.answered++;
        if (right) held.correct++;
      }
      if (!right) {
        misses.asked.push(
          `${q.question} [${q.pages}] -> ${
            a.answered ? a.citations.map((c) => c.page).join(",") : "not answered"
          }`,
        );
      }
      points.push({
        question: q.question,
        coverage: (await direct(q.question, 0)).coverage,
        pages: q.pages,
      });
    }
    const outOfScopeMax: number[] = [];
    for (const q of set.outOfScope) {
      const a = await ask(q.question);
      if (q.added === "holdout") {
        held.outOfScope++;
        if (a.answered) held.answered++;
      }
      if (a.answered) {
        answered++;
        falseAnswers++;
        misses.wronglyAnswered.push(`${q.question} (${q.kind})`);
      }
      points.push({
        question: q.question,
        coverage: (await direct(q.question, 0)).coverage,
        pages: null,
      });
      outOfScopeMax.push(await bestSimilarity(vectors, embedder, tenant.id, courseId, q.question));
    }
    let hits = 0;
    const phraseBest: number[] = [];
    for (const s of set.search) {
      const res = await (await world.app.request(
        `/api/courses/${courseId}/search?k=3&q=${encodeURIComponent(s.phrase)}`,
        { headers: KEY_HEADERS(key) },
      )).json() as { results: { page: number }[] };
      if (res.results.some((r) => s.pages.includes(r.page))) hits++;
      else misses.search.push(`${s.phrase} [${s.pages}] -> ${res.results.map((r) => r.page)}`);
      phraseBest.push(await bestSimilarity(vectors, embedder, tenant.id, courseId, s.phrase));
    }
    // What the route would have answered at each threshold (the same answerQuestion).
    const sweep = [];
    for (let m = 0.3; m <= 0.951; m += 0.05) {
      const minCoverage = Math.round(m * 100) / 100;
      let yes = 0;
      let good = 0;
      for (const p of points.filter((p) => p.coverage >= minCoverage)) {
        const a = await direct(p.question, minCoverage);
        if (!a.answered) continue;
        yes++;
        if (p.pages && a.citations.some((c) => p.pages!.includes(c.page))) good++;
      }
      sweep.push({
        minCoverage,
        precision: yes ? good / yes : 1,
        recall: good / set.inScope.length,
      });
    }
    return {
      book: set.book,
      pages: course.sources[0].pageCount,
      inScope: set.inScope.length,
      outOfScope: set.outOfScope.length,
      phrases: set.search.length,
      precision: answered ? correct / answered : 1,
      recall: correct / set.inScope.length,
      falseAnswers,
      hitAt3: hits / set.search.length,
      holdout: {
        inScope: held.inScope,
        outOfScope: held.outOfScope,
        precision: held.answered ? held.correct / held.answered : 1,
        recall: held.inScope ? held.correct / held.inScope : NaN,
      },
      sweep,
      similarity: { outOfScopeMax, phraseBest },
      misses,
      thresholds,
    };
  } finally {
    await world.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The same question set run against a server already holding the book's course (the hook of
 * bench/course_quality.ts): `bench/course_questions/<book>.json` next to this file, or NaN
 * figures when the book has no set.
 */
export async function courseAsk(
  { base, headers, courseId, pdfPath }: {
    base: string;
    headers: Record<string, string>;
    courseId: string;
    pdfPath: string;
  },
): Promise<{ precision: number; recall: number; hitRateAt3: number }> {
  const book = pdfPath.split("/").at(-1)!.replace(/\.pdf$/i, "");
  const path = new URL(`./course_questions/${book}.json`, import.meta.url);
  let set: QuestionSet;
  try {
    set = JSON.parse(await Deno.readTextFile(path)) as QuestionSet;
  } catch {
    return { precision: NaN, recall: NaN, hitRateAt3: NaN };
  }
  const ask = async (question: string) =>
    await (await fetch(`${base}/api/courses/${courseId}/ask`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ question }),
    })).json() as { answered: boolean; citations: { page: number }[] };
  let answered = 0, correct = 0, hits = 0;
  for (const q of set.inScope) {
    const a = await ask(q.question);
    if (a.answered) answered++;
    if (a.answered && a.citations.some((c) => q.pages.includes(c.page))) correct++;
  }
  for (const q of set.outOfScope) if ((await ask(q.question)).answered) answered++;
  for (const s of set.search) {
    const res = await (await fetch(
      `${base}/api/courses/${courseId}/search?k=3&q=${encodeURIComponent(s.phrase)}`,
      { headers },
    )).json() as { results: { page: number }[] };
    if (res.results.some((r) => s.pages.includes(r.page))) hits++;
  }
  return {
    precision: answered ? correct / answered : 1,
    recall: correct / set.inScope.length,
    hitRateAt3: hits / set.search.length,
  };
}

/** The largest cosine similarity of `text` (without stop words) to any passage of the course. */
async function bestSimilarity(
  vectors: PgVectorStore,
  embedder: HashingEmbedder,
  tenantId: string,
  courseId: string,
  text: string,
): Promise<number> {
  const content = wholeTokens(text).filter((t) => !STOP_WORDS.has(t)).join(" ") ||
    queryTokens(text).join(" ");
  const [v] = await embedder.embed([content]);
  return (await vectors.query(v!, { tenantId, courseId }, 1))[0]?.score ?? 0;
}

const BOOKS: Record<string, string> = {
  "R-intro": "/work/.corpus/x/usr/share/R/doc/manual/R-intro.pdf",
  asymptote: "/work/.corpus/x/usr/share/doc/asymptote/asymptote.pdf",
};

const pctOf = (x: number) => `${(x * 100).toFixed(1)}%`;
const quantiles = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]?.toFixed(3);
  return `min ${at(0)} p50 ${at(0.5)} p90 ${at(0.9)} max ${at(1)}`;
};

if (import.meta.main) {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      book: { type: "string", default: "R-intro,asymptote" },
      verbose: { type: "boolean", default: false },
    },
  });
  console.log(
    "ask precision = answered-and-correct / answered; ask recall = answered-and-correct / " +
      "in-scope; correct = at least one citation on an expected page; search hit@3 = an " +
      "expected page among the first 3 results.",
  );
  console.log(
    "Thresholds (RELEVANCE_DEFAULTS) calibrated on R-intro only: minCoverage where its sweep " +
      "gives the best precision + recall; minSimilarity just above the best vector similarity " +
      "of any of its out-of-scope questions. asymptote is the held-out check.",
  );
  for (const book of args.book.split(",")) {
    const questions = new URL(`./course_questions/${book}.json`, import.meta.url).pathname;
    const t0 = performance.now();
    const f = await askFigures(BOOKS[book]!, questions);
    console.log(
      `\n${f.book} (${f.pages} pages; ${f.inScope} in scope, ${f.outOfScope} out of scope, ` +
        `${f.phrases} phrases; ${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
    console.log(
      `  ask precision ${pctOf(f.precision)} (target >= 90%), recall ${pctOf(f.recall)} ` +
        `(target >= 80%), out-of-scope answered ${f.falseAnswers}/${f.outOfScope}; ` +
        `search hit@3 ${pctOf(f.hitAt3)} (target >= 90%)`,
    );
    console.log(
      `  holdout only (${f.holdout.inScope} in scope, ${f.holdout.outOfScope} out of scope): ` +
        `ask precision ${pctOf(f.holdout.precision)}, recall ${pctOf(f.holdout.recall)}`,
    );
    console.log(
      `  thresholds: minCoverage ${f.thresholds.minCoverage}, minSimilarity ` +
        `${f.thresholds.minSimilarity}`,
    );
    console.log(
      `  sweep (minCoverage: precision/recall): ${
        f.sweep.map((s) => `${s.minCoverage}: ${pctOf(s.precision)}/${pctOf(s.recall)}`).join(
          ", ",
        )
      }`,
    );
    console.log(`  vector similarity, out-of-scope best: ${quantiles(f.similarity.outOfScopeMax)}`);
    console.log(`  vector similarity, phrases' best:    ${quantiles(f.similarity.phraseBest)}`);
    if (args.verbose) {
      for (const m of f.misses.asked) console.log(`  missed: ${m}`);
      for (const m of f.misses.wronglyAnswered) console.log(`  answered out of scope: ${m}`);
      for (const m of f.misses.search) console.log(`  search miss: ${m}`);
    }
  }
}
