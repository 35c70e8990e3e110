/**
 * Retrieval and extractive answers over a course's passages.
 *
 * `searchPassages` ranks the course's chunks by PostgreSQL full-text rank. `answerQuestion`
 * answers only from the course: it takes the retrieved passages' sentences that share the
 * most informative terms with the question, and cites each with its file and physical page;
 * when no sentence shares enough of the question, it says that the course does not answer it.
 */
import type { SqlExecutor } from "../runtime/ports.ts";
import type { TextEmbedder } from "../../db/embeddings/hashing.ts";
import { reciprocalRankFusion } from "../../db/vectors/pg.ts";
import type { VectorStore } from "../../db/vectors/store.ts";
import { sentences, terms } from "./writer.ts";

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

export const NO_ANSWER = "The course text does not answer this question.";

/** The best-ranked passages of a course for `query` (full text, `simple` configuration). */
export async function searchPassages(
  db: SqlExecutor,
  courseId: string,
  tenantId: string,
  query: string,
  k: number,
): Promise<Passage[]> {
  // Any of the query's words may match (OR), ranked by how many and how often.
  const words = terms(query).slice(0, 32);
  if (words.length === 0) return [];
  const tsquery = words.map((w) => w.replace(/[^\p{L}\p{N}]/gu, "")).filter(Boolean).join(" | ");
  if (!tsquery) return [];
  const rows = await db.query<{
    id: string;
    text: string;
    file_name: string;
    source_idx: number;
    sha256: string;
    page_from: number;
    page_to: number;
    section: string;
    score: number;
  }>(
    `SELECT c.id, c.text, c.file_name, c.source_idx, s.sha256, c.page_from, c.page_to, c.section,
       ts_rank(c.tsv, to_tsquery('simple', $3))::float8 AS score
     FROM troupe_course_chunks c
     JOIN troupe_course_sources s ON s.course_id = c.course_id AND s.idx = c.source_idx
     WHERE c.course_id = $1 AND c.tenant_id = $2 AND c.tsv @@ to_tsquery('simple', $3)
     ORDER BY score DESC, c.id LIMIT $4`,
    [courseId, tenantId, tsquery, k],
  );
  return rows.map((r) => ({
    id: r.id,
    text: r.text,
    fileName: r.file_name,
    sourceIdx: r.source_idx,
    sha256: r.sha256,
    pageFrom: r.page_from,
    pageTo: r.page_to,
    section: r.section,
    score: r.score,
  }));
}

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
 * Hybrid search: full-text ranks and vector-similarity ranks (the course's embeddings) fused
 * by reciprocal rank fusion, so exact terms and code words are found, and word variants
 * the full text misses ("membranes" for "membrane") are found by the embedding's word pieces.
 */
export async function hybridSearch(
  db: SqlExecutor,
  vectors: VectorStore,
  embedder: TextEmbedder,
  courseId: string,
  tenantId: string,
  query: string,
  k: number,
): Promise<Passage[]> {
  const depth = Math.max(20, k * 2);
  const [fullText, [vector]] = await Promise.all([
    searchPassages(db, courseId, tenantId, query, depth),
    embedder.embed([query]),
  ]);
  const near = await vectors.query(vector!, { tenantId, courseId }, depth);
  const fused = reciprocalRankFusion([fullText.map((p) => p.id), near.map((h) => h.id)]).slice(
    0,
    k,
  );
  const known = new Map(fullText.map((p) => [p.id, p]));
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

/** The physical page (within the passage's range) whose text holds `snippet`. */
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
  return p.pageFrom;
}

function normalize(text: string): string {
  return text.replace(/\s+/g, " ").trim().toLowerCase();
}

/** An extractive answer with citations, or `NO_ANSWER`. */
export async function answerQuestion(
  db: SqlExecutor,
  vectors: VectorStore,
  embedder: TextEmbedder,
  courseId: string,
  tenantId: string,
  question: string,
): Promise<{ answer: string; citations: Citation[] }> {
  const asked = new Set(terms(question));
  if (asked.size === 0) return { answer: NO_ANSWER, citations: [] };
  const passages = await hybridSearch(db, vectors, embedder, courseId, tenantId, question, 5);
  const candidates: { text: string; passage: Passage; score: number }[] = [];
  for (const p of passages) {
    for (const s of sentences(p.text)) {
      const have = new Set(terms(s));
      let shared = 0;
      for (const t of asked) if (have.has(t)) shared++;
      const coverage = shared / asked.size;
      if (shared > 0) candidates.push({ text: s, passage: p, score: coverage + p.score * 0.1 });
    }
  }
  candidates.sort((a, b) => b.score - a.score);
  // Half of the question's informative words at least, or the course does not answer it.
  const best = candidates.filter((c) => c.score >= 0.5).slice(0, 3);
  if (best.length === 0) return { answer: NO_ANSWER, citations: [] };
  const citations: Citation[] = [];
  for (const c of best) {
    citations.push({
      fileName: c.passage.fileName,
      page: await locatePage(db, c.passage, c.text),
      text: c.text,
    });
  }
  return { answer: best.map((c) => c.text).join(" "), citations };
}
