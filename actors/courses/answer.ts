/**
 * Retrieval and extractive answers over a course's passages.
 *
 * `searchPassages` ranks the course's passages by BM25 over the lexical index
 * (`troupe_course_chunks.lexemes`, tokens from `lexicon.ts`: short identifiers and code
 * punctuation kept; scored in memory by `lexical_index.ts`), the same on PGlite and
 * PostgreSQL. `hybridSearch` fuses it with
 * the embeddings' nearest passages (only those at least `minSimilarity` close: a query nothing
 * matches finds nothing). `answerQuestion` answers only from the course: it answers when some
 * passage's few consecutive sentences hold enough of the question's informative terms
 * (weighted by how rare they are in the course; a term the course never uses weighs most),
 * and otherwise says that the course does not answer it (`answered: false`). Each answer
 * sentence is cited on the page of its text that holds the most of what was asked.
 */
import type { SqlExecutor } from "@troupe/runtime";
import type { TextEmbedder } from "./embeddings/port.ts";
import { reciprocalRankFusion } from "./vectors/pg.ts";
import type { VectorStore } from "./vectors/port.ts";
import { queryTokens, STOP_WORDS, tokens, variants, wholeTokens } from "./lexicon.ts";
import { sentences } from "./writer/text.ts";
import { bm25, courseIndex, idf, unseenIdf } from "./lexical_index.ts";

export interface Passage {
  id: string;
  text: string;
  fileName: string;
  sourceIdx: number;
  sha256: string;
  pageFrom: number;
  pageTo: number;
  section: string;
  score: number;
}

export interface Citation {
  fileName: string;
  page: number;
  text: string;
}

export interface Answer {
  /** False when the course does not answer the question (`answer` then says so). */
  answered: boolean;
  answer: string;
  /** One per (file, page), in the order of the answer's sentences. */
  citations: Citation[];
}

export const NO_ANSWER = "The course text does not answer this question.";

/**
 * The thresholds of search and answers. Their defaults are calibrated for the local
 * `HashingEmbedder` on the question sets of `bench/course_questions/` (`bench/course_ask.ts`).
 */
export interface RelevanceOptions {
  /**
   * The least cosine similarity for a passage found only by its embedding.
   * @default 0.45
   */
  minSimilarity?: number;
  /**
   * The least share of the question's term weight that a few consecutive sentences of one
   * passage must hold for the course to answer it.
   * @default 0.55
   */
  minCoverage?: number;
}

export const RELEVANCE_DEFAULTS: Required<RelevanceOptions> = {
  minSimilarity: 0.45,
  minCoverage: 0.55,
};

const PASSAGE_COLUMNS = `c.id, c.text, c.file_name, c.source_idx, s.sha256, c.page_from,
  c.page_to, c.section`;

function toPassage(r: Record<string, unknown>, score: number): Passage {
  return {
    id: String(r.id),
    text: String(r.text),
    fileName: String(r.file_name),
    sourceIdx: Number(r.source_idx),
    sha256: String(r.sha256),
    pageFrom: Number(r.page_from),
    pageTo: Number(r.page_to),
    section: String(r.section),
    score,
  };
}

/**
 * The best passages of a course for `query` by BM25 over the lexical index: any of the
 * query's tokens may match; none matching gives none.
 */
export async function searchPassages(
  db: SqlExecutor,
  courseId: string,
  tenantId: string,
  query: string,
  k: number,
): Promise<Passage[]> {
  const terms = queryTokens(query);
  if (terms.length === 0) return [];
  const ranked = bm25(await courseIndex(db, courseId, tenantId), terms, k);
  if (ranked.length === 0) return [];
  const rows = await db.query<Record<string, unknown>>(
    `SELECT ${PASSAGE_COLUMNS} FROM troupe_course_chunks c
     JOIN troupe_course_sources s ON s.course_id = c.course_id AND s.idx = c.source_idx
     WHERE c.course_id = $1 AND c.tenant_id = $2 AND c.id = ANY($3::text[])`,
    [courseId, tenantId, ranked.map((r) => r.id)],
  );
  const byId = new Map(rows.map((r) => [String(r.id), r]));
  return ranked.flatMap((r) => {
    const row = byId.get(r.id);
    return row ? [toPassage(row, r.score)] : [];
  });
}

/**
 * Hybrid search: the lexical ranks and the vector-similarity ranks (the course's embeddings,
 * only hits at least `minSimilarity` close) fused by reciprocal rank fusion, so exact terms and
 * code words are found, and word variants the lexical index misses ("membranes" for
 * "membrane") by the embedding's word pieces. Nothing matching gives nothing.
 */
export async function hybridSearch(
  db: SqlExecutor,
  vectors: VectorStore,
  embedder: TextEmbedder,
  courseId: string,
  tenantId: string,
  query: string,
  k: number,
  { minSimilarity = RELEVANCE_DEFAULTS.minSimilarity }: RelevanceOptions = {},
): Promise<Passage[]> {
  const depth = Math.max(20, k * 2);
  // The embedding is of the query's words without stop words: those are in every passage.
  const content = wholeTokens(query).filter((t) => !STOP_WORDS.has(t)).join(" ") || query;
  const [lexical, [vector]] = await Promise.all([
    searchPassages(db, courseId, tenantId, query, depth),
    embedder.embed([content]),
  ]);
  const near = (await vectors.query(vector!, { tenantId, courseId }, depth))
    .filter((h) => h.score >= minSimilarity);
  const fused = reciprocalRankFusion([lexical.map((p) => p.id), near.map((h) => h.id)]).slice(
    0,
    k,
  );
  const known = new Map(lexical.map((p) => [p.id, p]));
  const missing = fused.map((f) => f.id).filter((id) => !known.has(id));
  if (missing.length) {
    const rows = await db.query<Record<string, unknown>>(
      `SELECT ${PASSAGE_COLUMNS} FROM troupe_course_chunks c
       JOIN troupe_course_sources s ON s.course_id = c.course_id AND s.idx = c.source_idx
       WHERE c.course_id = $1 AND c.tenant_id = $2 AND c.id = ANY($3::text[])`,
      [courseId, tenantId, missing],
    );
    for (const r of rows) known.set(String(r.id), toPassage(r, 0));
  }
  return fused.flatMap((f) => {
    const p = known.get(f.id);
    return p ? [{ ...p, score: f.score }] : [];
  });
}

export interface SearchResult {
  text: string;
  fileName: string;
  page: number;
  section: string;
  score: number;
}

/**
 * A course's search results: hybrid search's passages, each at the page of its sentence that
 * matches the query best, at most one per (file, page, section), best first; none when nothing
 * matches.
 */
export async function searchCourse(
  db: SqlExecutor,
  vectors: VectorStore,
  embedder: TextEmbedder,
  courseId: string,
  tenantId: string,
  query: string,
  k: number,
  options: RelevanceOptions = {},
): Promise<SearchResult[]> {
  // Overlapping passages often share a page: fetch more, keep the best of each place.
  const passages = await hybridSearch(db, vectors, embedder, courseId, tenantId, query, k * 3, {
    ...options,
  });
  const asked = new Set(queryTokens(query));
  const results: SearchResult[] = [];
  const seen = new Set<string>();
  for (const p of passages) {
    const page = await matchingPage(db, p, asked);
    const key = JSON.stringify([p.fileName, page, p.section]);
    if (seen.has(key)) continue;
    seen.add(key);
    results.push({ text: p.text, fileName: p.fileName, page, section: p.section, score: p.score });
    if (results.length === k) break;
  }
  return results;
}

/**
 * The physical page (within the passage's range) holding the most of the query's tokens
 * (distinct ones first, then occurrences); the first such page on a tie.
 */
export async function matchingPage(
  db: SqlExecutor,
  p: Passage,
  asked: ReadonlySet<string>,
): Promise<number> {
  if (p.pageFrom === p.pageTo) return p.pageFrom;
  const rows = await db.query<{ page: number; lines: { text: string }[] }>(
    "SELECT page, lines FROM troupe_pdf_pages WHERE sha256 = $1 AND page BETWEEN $2 AND $3 ORDER BY page",
    [p.sha256, p.pageFrom, p.pageTo],
  );
  let best = p.pageFrom;
  let bestScore = -1;
  for (const r of rows) {
    const found = tokens(r.lines.map((l) => l.text).join("\n")).filter((t) => asked.has(t));
    const score = new Set(found).size * 10_000 + found.length;
    if (score > bestScore) [best, bestScore] = [r.page, score];
  }
  return best;
}

/**
 * The physical page (within the passage's range) whose text holds `snippet`; when no page
 * holds it verbatim (a sentence across a page break, a hyphenated line end), the page holding
 * most of its tokens.
 */
export async function locatePage(db: SqlExecutor, p: Passage, snippet: string): Promise<number> {
  if (p.pageFrom === p.pageTo) return p.pageFrom;
  const rows = await db.query<{ page: number; lines: { text: string }[] }>(
    "SELECT page, lines FROM troupe_pdf_pages WHERE sha256 = $1 AND page BETWEEN $2 AND $3 ORDER BY page",
    [p.sha256, p.pageFrom, p.pageTo],
  );
  const needle = normalize(snippet).slice(0, 60);
  for (const r of rows) {
    if (normalize(r.lines.map((l) => l.text).join(" ")).includes(needle)) return r.page;
  }
  return await matchingPage(db, p, new Set(tokens(snippet)));
}

/**
 * The physical page of an answer sentence: the page holding most of the asked words' weight
 * within the sentence's own text. A sentence that runs across pages (a long listing, a
 * paragraph over a page break) is cited where what was asked is, not where it starts; the
 * first such page on a tie. When the sentence is not found verbatim in the pages' text, the
 * page `locatePage` finds.
 */
async function answerPage(
  db: SqlExecutor,
  p: Passage,
  sentence: string,
  asked: readonly AskedWord[],
): Promise<number> {
  if (p.pageFrom === p.pageTo) return p.pageFrom;
  const rows = await db.query<{ page: number; lines: { text: string }[] }>(
    "SELECT page, lines FROM troupe_pdf_pages WHERE sha256 = $1 AND page BETWEEN $2 AND $3 ORDER BY page",
    [p.sha256, p.pageFrom, p.pageTo],
  );
  // The pages' text joined, with where each page starts in it.
  let joined = "";
  const starts: { page: number; at: number }[] = [];
  for (const r of rows) {
    starts.push({ page: r.page, at: joined.length });
    joined += `${normalize(r.lines.map((l) => l.text).join(" "))} `;
  }
  const text = normalize(sentence);
  const from = joined.indexOf(text.slice(0, 60));
  if (from === -1) return await locatePage(db, p, sentence);
  const to = from + text.length;
  // The section's heading is held on each of its pages, as when the sentence was chosen.
  const heading = tokens(p.section);
  let best = -1;
  let bestPage = p.pageFrom;
  starts.forEach(({ page, at }, i) => {
    const next = starts[i + 1]?.at ?? joined.length;
    const lo = Math.max(from, at);
    const hi = Math.min(to, next);
    if (hi <= lo) return;
    const held = coverage(asked, new Set([...heading, ...tokens(joined.slice(lo, hi))]));
    if (held > best) [best, bestPage] = [held, page];
  });
  return bestPage;
}

function normalize(text: string): string {
  return text.replace(/\s+/g, " ").trim().toLowerCase();
}

/** Words of a question that ask rather than name what is asked about. */
const ASKING = new Set(
  "explain describe tell give show list example examples way ways difference purpose".split(" "),
);

/** The share of the asked words' weight that `have` holds (a word in any of its forms). */
function coverage(asked: readonly AskedWord[], have: Set<string>): number {
  let total = 0;
  let held = 0;
  for (const a of asked) {
    total += a.weight;
    if (a.alternatives.some((t) => have.has(t))) held += a.weight;
  }
  return total > 0 ? held / total : 0;
}

export /** A word of a question: its forms, and its weight (its idf in the course). */
interface AskedWord {
  alternatives: string[];
  weight: number;
}

/** Sentences at most this far apart (in a passage) count as one answer window. */
const WINDOW = 1;
/** How much a passage's place in the search results lowers its sentences' score. */
const RANK_PENALTY = 0.05;
/** Sentences in an answer. */
const MAX_SENTENCES = 3;

/**
 * An extractive answer with citations when the course answers the question; otherwise
 * `answered: false` with `NO_ANSWER`. Its sentences are distinct, and so are its citations'
 * (file, page) pairs.
 */
export async function answerQuestion(
  db: SqlExecutor,
  vectors: VectorStore,
  embedder: TextEmbedder,
  courseId: string,
  tenantId: string,
  question: string,
  options: RelevanceOptions = {},
): Promise<Answer & { coverage: number }> {
  const { minCoverage, minSimilarity } = { ...RELEVANCE_DEFAULTS, ...options };
  const none = (c: number) => ({ answered: false, answer: NO_ANSWER, citations: [], coverage: c });
  // The question's whole words (not stop words), each held by a passage in its own form or
  // another inflection (`variants`); the pieces of a compound (`t`, `test` of `t.test`) are
  // not asked on their own.
  const words = [...new Set(wholeTokens(question))].filter((t) =>
    !STOP_WORDS.has(t) && !ASKING.has(t)
  );
  if (words.length === 0) return none(0);
  const index = await courseIndex(db, courseId, tenantId);
  // A word the course never uses weighs as much as the rarest possible one.
  const asked = words.map((word) => {
    const alternatives = [word, ...variants(word)];
    const known = alternatives.filter((t) => index.postings.has(t)).map((t) => idf(index, t));
    return { alternatives, weight: known.length ? Math.min(...known) : unseenIdf(index) };
  });
  const passages = await hybridSearch(
    db,
    vectors,
    embedder,
    courseId,
    tenantId,
    words.join(" "),
    8,
    { minSimilarity },
  );
  const candidates: { text: string; passage: Passage; score: number; cover: number }[] = [];
  passages.forEach((p, rank) => {
    const list = sentences(p.text);
    const heading = tokens(p.section);
    const own = list.map((s) => new Set(tokens(s)));
    list.forEach((text, i) => {
      const window = new Set(heading);
      for (let j = Math.max(0, i - WINDOW); j <= Math.min(list.length - 1, i + WINDOW); j++) {
        for (const t of own[j]!) window.add(t);
      }
      const cover = coverage(asked, window);
      const self = coverage(asked, own[i]!);
      if (self > 0) {
        candidates.push({ text, passage: p, cover, score: cover + self - rank * RANK_PENALTY });
      }
    });
  });
  candidates.sort((a, b) => b.score - a.score);
  const best = candidates[0]?.cover ?? 0;
  if (best < minCoverage) return none(best);
  // A sentence is said once, even when passages overlap or a heading runs into it.
  const seen: string[] = [];
  const chosen = candidates.filter((c) => {
    const key = normalize(c.text);
    if (c.cover < minCoverage || seen.some((k) => k.includes(key) || key.includes(k))) {
      return false;
    }
    seen.push(key);
    return true;
  }).slice(0, MAX_SENTENCES);
  const citations: Citation[] = [];
  for (const c of chosen) {
    const page = await answerPage(db, c.passage, c.text, asked);
    const same = citations.find((x) => x.fileName === c.passage.fileName && x.page === page);
    if (same) same.text += ` ${c.text}`;
    else citations.push({ fileName: c.passage.fileName, page, text: c.text });
  }
  return {
    answered: true,
    answer: chosen.map((c) => c.text).join(" "),
    citations,
    coverage: best,
  };
}
