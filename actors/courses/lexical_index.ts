/**
 * BM25 over a course's lexical index (`troupe_course_chunks.lexemes`, tokens from
 * `lexicon.ts`). A course's postings are read once into memory and kept (LRU, bounded) while
 * its passage count is unchanged: a course changes only when it is rebuilt or deleted, as for
 * its vectors (`vectors/pg.ts`). Scoring in memory keeps a search over thousands of
 * passages to a few milliseconds on PGlite and PostgreSQL alike, where ranking in SQL has to
 * unnest every matching passage's lexemes.
 */
import type { SqlExecutor } from "@troupe/runtime";

/** BM25's term-frequency saturation and length normalisation. */
const K1 = 1.2;
const B = 0.75;
const BATCH = 1000;
/** Memory for cached course indexes (5,000 passages of 400 words ≈ 15 MB). */
const CACHE_BYTES = 64 * 1024 * 1024;

export interface CourseIndex {
  ids: string[];
  /** Tokens per passage (BM25's document length). */
  lengths: Float64Array;
  avgLength: number;
  /** Per lexeme: the passages (indexes into `ids`) holding it and how often. */
  postings: Map<string, { docs: Int32Array; tf: Float64Array }>;
  bytes: number;
}

export interface Scored {
  id: string;
  score: number;
}

/** Course indexes by database handle, then tenant and course. */
const caches = new WeakMap<SqlExecutor, Map<string, CourseIndex>>();

/** The course's index, read from the database unless cached with the same passage count. */
export async function courseIndex(
  db: SqlExecutor,
  courseId: string,
  tenantId: string,
): Promise<CourseIndex> {
  let cache = caches.get(db);
  if (!cache) caches.set(db, cache = new Map());
  const key = `${tenantId}\u0000${courseId}`;
  const [{ n }] = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM troupe_course_chunks WHERE course_id = $1 AND tenant_id = $2",
    [courseId, tenantId],
  ) as [{ n: number }];
  const hit = cache.get(key);
  if (hit && hit.ids.length === n) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const index = await readIndex(db, courseId, tenantId);
  cache.set(key, index);
  let bytes = 0;
  for (const c of cache.values()) bytes += c.bytes;
  while (bytes > CACHE_BYTES && cache.size > 1) {
    const oldest = cache.keys().next().value!;
    bytes -= cache.get(oldest)!.bytes;
    cache.delete(oldest);
  }
  return index;
}

/** One `tsvector` entry: a quoted lexeme and its positions. */
const ENTRY = /'((?:[^']|'')*)'(?::([0-9A-D,]+))?/g;

async function readIndex(db: SqlExecutor, courseId: string, tenantId: string) {
  const ids: string[] = [];
  const lengths: number[] = [];
  const lists = new Map<string, { docs: number[]; tf: number[] }>();
  let bytes = 0;
  let after = "";
  while (true) {
    const rows = await db.query<{ id: string; lexemes: string | null }>(
      `SELECT id, lexemes::text AS lexemes FROM troupe_course_chunks
       WHERE course_id = $1 AND tenant_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
      [courseId, tenantId, after, BATCH],
    );
    for (const r of rows) {
      const doc = ids.length;
      ids.push(r.id);
      let length = 0;
      for (const m of (r.lexemes ?? "").matchAll(ENTRY)) {
        const raw = m[1]!;
        const lexeme = raw.includes("'") || raw.includes("\\")
          ? raw.replace(/''/g, "'").replace(/\\\\/g, "\\")
          : raw;
        const tf = m[2] ? commas(m[2]) + 1 : 1;
        length += tf;
        let list = lists.get(lexeme);
        if (!list) {
          lists.set(lexeme, list = { docs: [], tf: [] });
          bytes += lexeme.length * 2 + 64;
        }
        list.docs.push(doc);
        list.tf.push(tf);
        bytes += 12;
      }
      lengths.push(length);
    }
    if (rows.length < BATCH) break;
    after = rows.at(-1)!.id;
  }
  const postings = new Map<string, { docs: Int32Array; tf: Float64Array }>();
  for (const [t, l] of lists) {
    postings.set(t, { docs: Int32Array.from(l.docs), tf: Float64Array.from(l.tf) });
  }
  const total = lengths.reduce((a, b) => a + b, 0);
  return {
    ids,
    lengths: Float64Array.from(lengths),
    avgLength: ids.length ? Math.max(1, total / ids.length) : 1,
    postings,
    bytes: bytes + ids.length * 40,
  };
}

function commas(text: string): number {
  let n = 0;
  for (let i = text.indexOf(","); i !== -1; i = text.indexOf(",", i + 1)) n++;
  return n;
}

/** BM25's inverse document frequency of `term` (the largest possible when no passage has it). */
export function idf(index: CourseIndex, term: string): number {
  const df = index.postings.get(term)?.docs.length ?? 0;
  const n = index.ids.length;
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/** The idf of a term no passage holds: the largest there is. */
export function unseenIdf(index: CourseIndex): number {
  return Math.log(1 + (index.ids.length + 0.5) / 0.5);
}

/** The `k` best passages for `terms` by BM25 (any term may match), best first. */
export function bm25(index: CourseIndex, terms: readonly string[], k: number): Scored[] {
  const scores = new Map<number, number>();
  for (const t of new Set(terms)) {
    const list = index.postings.get(t);
    if (!list) continue;
    const w = idf(index, t);
    for (let i = 0; i < list.docs.length; i++) {
      const doc = list.docs[i]!;
      const tf = list.tf[i]!;
      const norm = tf + K1 * (1 - B + B * index.lengths[doc]! / index.avgLength);
      scores.set(doc, (scores.get(doc) ?? 0) + w * tf * (K1 + 1) / norm);
    }
  }
  return [...scores]
    .map(([doc, score]) => ({ id: index.ids[doc]!, score }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
    .slice(0, k);
}
