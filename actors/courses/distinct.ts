/**
 * What keeps a course's lessons from repeating one another: no two lessons share a summary or
 * a quiz question, neither exactly (after whitespace is normalised) nor nearly (the Jaccard
 * similarity of their word 3-shingles is at least {@link NEAR}).
 *
 * {@link distinctLessons} enforces it over a course, lesson after lesson in course order: a
 * question that repeats an earlier one (its own lesson's included) is dropped; a summary that
 * repeats an earlier one is written again from the lesson's own sentences, leaving out those
 * already in an earlier summary, and, if that still repeats one (a lesson whose text is all
 * in another's), made of the lesson's module and title. An empty summary is written the same
 * way.
 */
import type { QuizQuestion } from "./writer/port.ts";
import { sentences } from "./writer/text.ts";

/** Two texts whose word 3-shingles are at least this similar (Jaccard) are the same. */
export const NEAR = 0.9;

/** Text with its whitespace runs as single spaces, trimmed. */
export function normalizeSpace(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** The word 3-shingles of a text (lower-cased); a text of fewer words is one shingle. */
export function shingles(text: string): Set<string> {
  const words = normalizeSpace(text).toLowerCase().split(" ").filter(Boolean);
  if (words.length < 3) return new Set([words.join(" ")]);
  const out = new Set<string>();
  for (let i = 0; i + 3 <= words.length; i++) out.add(words.slice(i, i + 3).join(" "));
  return out;
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const s of small) if (large.has(s)) shared++;
  return shared / (a.size + b.size - shared);
}

/** Whether two texts count as the same (see the module doc). */
export function sameText(a: string, b: string): boolean {
  const [x, y] = [normalizeSpace(a), normalizeSpace(b)];
  return x === y || jaccard(shingles(x), shingles(y)) >= NEAR;
}

/** FNV-1a: a fixed order of shingles shared by every set (for the prefix filter). */
function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Texts seen so far, answering whether a text is the same as one of them without comparing
 * it with each: with every set's shingles in one global order, two sets with a Jaccard
 * similarity of at least t share a shingle among the first |A| - ceil(t|A|) + 1 of each
 * (prefix filtering), so only texts sharing a prefix shingle are compared.
 */
export class SeenTexts {
  readonly #exact = new Set<string>();
  readonly #sets: Set<string>[] = [];
  readonly #index = new Map<string, number[]>();

  #prefix(set: Set<string>): string[] {
    const sorted = [...set].sort((a, b) => hash(a) - hash(b) || (a < b ? -1 : a > b ? 1 : 0));
    return sorted.slice(0, sorted.length - Math.ceil(NEAR * sorted.length) + 1);
  }

  /** Whether `text` is the same as a text added before. */
  has(text: string): boolean {
    const t = normalizeSpace(text);
    if (this.#exact.has(t)) return true;
    const set = shingles(t);
    const checked = new Set<number>();
    for (const s of this.#prefix(set)) {
      for (const id of this.#index.get(s) ?? []) {
        if (checked.has(id)) continue;
        checked.add(id);
        if (jaccard(set, this.#sets[id]!) >= NEAR) return true;
      }
    }
    return false;
  }

  add(text: string): void {
    const t = normalizeSpace(text);
    this.#exact.add(t);
    const set = shingles(t);
    const id = this.#sets.push(set) - 1;
    for (const s of this.#prefix(set)) {
      const ids = this.#index.get(s);
      if (ids) ids.push(id);
      else this.#index.set(s, [id]);
    }
  }
}

/** A written lesson with what its summary can be written again from. */
export interface DistinctInput {
  title: string;
  /** The module's title, for the last-resort summary. */
  module: string;
  summary: string;
  quiz: QuizQuestion[];
  /** The lesson's own text. */
  passages: { text: string }[];
}

/** How many sentences a summary written again has (the local writer's count). */
const SUMMARY_SENTENCES = 3;

/**
 * Makes the lessons' summaries and questions distinct (see the module doc), in place and in
 * order; returns how many summaries were written again and questions dropped.
 */
export function distinctLessons(
  lessons: DistinctInput[],
): { summaries: number; questions: number } {
  const summaries = new SeenTexts();
  const questions = new SeenTexts();
  /** Sentences of the summaries kept so far. */
  const used = new Set<string>();
  let rewritten = 0;
  let dropped = 0;
  for (const lesson of lessons) {
    if (!normalizeSpace(lesson.summary) || summaries.has(lesson.summary)) {
      rewritten++;
      lesson.summary = resummarize(lesson, used, summaries);
    }
    summaries.add(lesson.summary);
    for (const s of sentences(lesson.summary)) used.add(normalizeSpace(s).toLowerCase());
    const kept: QuizQuestion[] = [];
    for (const q of lesson.quiz) {
      if (questions.has(q.question)) {
        dropped++;
        continue;
      }
      questions.add(q.question);
      kept.push(q);
    }
    lesson.quiz = kept;
  }
  return { summaries: rewritten, questions: dropped };
}

/** A summary for `lesson` that is the same as none in `seen`. */
function resummarize(lesson: DistinctInput, used: Set<string>, seen: SeenTexts): string {
  const fresh = (s: string) => !used.has(normalizeSpace(s).toLowerCase());
  const own = sentences(lesson.summary).filter(fresh);
  const rest = lesson.passages.flatMap((p) => sentences(p.text))
    .filter((s) => fresh(s) && !own.includes(s));
  // Sentence-like ones first (a capital, an end, a reasonable length), in reading order.
  const good = (s: string) => s.length >= 40 && s.length <= 300 && /[.!?]$/.test(s);
  const picked = [...own, ...rest.filter(good), ...rest.filter((s) => !good(s))]
    .slice(0, SUMMARY_SENTENCES);
  const base = `${lesson.module}: ${lesson.title}.`;
  for (const c of [picked.join(" "), base]) if (normalizeSpace(c) && !seen.has(c)) return c;
  // Two words are one shingle: "Lesson n." differs from each other one.
  for (let n = 1;; n++) if (!seen.has(`Lesson ${n}.`)) return `Lesson ${n}.`;
}
