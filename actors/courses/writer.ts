/**
 * The course writer port and its local adapter.
 *
 * The local writer needs no network and no model: it is extractive and deterministic.
 * Sentences are scored by the TF-IDF weight of their terms (against the whole document), so a
 * lesson's summary is its most characteristic sentences in reading order, its key points the
 * best short ones, and its quiz is cloze questions: a key sentence with a salient term blanked
 * out, the term as the answer, and distractors drawn from the document's own terms of a
 * similar kind. Every question cites the page its sentence is on.
 */

export interface LessonSource {
  title: string;
  /** The lesson's text as sentences with their 1-based physical page. */
  passages: { text: string; page: number }[];
}

export interface QuizQuestion {
  question: string;
  choices: string[];
  /** Index into `choices`. */
  answer: number;
  explanation: string;
  page: number;
}

export interface WrittenLesson {
  summary: string;
  keyPoints: string[];
  quiz: QuizQuestion[];
}

export interface CourseWriter {
  readonly name: string;
  /** Writes one lesson; `document` gives the whole course's text for term statistics. */
  lesson(lesson: LessonSource, document: DocumentStats): Promise<WrittenLesson>;
}

const STOP = new Set(
  ("a an and are as at be been but by can could did do does for from had has have he her his " +
    "how i if in into is it its may might more most must no not of on one or our out she should " +
    "so some such than that the their them then there these they this those to too two under up " +
    "us was we were what when where which while who why will with would you your also each other " +
    "only over same very just any all both about after again against because before being below " +
    "between during few further here off once own through until")
    .split(" "),
);

/** A sentence ending that is not one: an initial ("J. M. Chambers"). */
const INITIAL = /(?:^|[\s(])\p{Lu}\.$/u;
/** Nor these: letters with dots ("e.g.", "i.e.", "U.S."), abbreviations ("Fig. 3", "et al."). */
const ABBREVIATION =
  /(?:^|[\s(])(?:(?:\p{L}\.)+\p{L}|fig|figs|eq|eqs|no|nos|vol|vols|pp?|ed|eds|ch|chap|sec|cf|vs|al|dr|mr|mrs|ms|prof|st|jr|sr|approx|resp|ref|refs)\.$/iu;

/** Splits text into sentences, not at initials and abbreviations ({@link INITIAL}, {@link ABBREVIATION}). */
export function sentences(text: string): string[] {
  const out: string[] = [];
  for (const piece of text.replace(/\s+/g, " ").split(/(?<=[.!?])\s+(?=[\p{Lu}\p{N}"“(])/u)) {
    const s = piece.trim();
    if (!s) continue;
    const last = out.at(-1);
    if (last && (INITIAL.test(last) || ABBREVIATION.test(last))) out[out.length - 1] += ` ${s}`;
    else out.push(s);
  }
  return out;
}

/** Lower-cased word terms, without stop words and short tokens. */
export function terms(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}'-]*/gu) ?? [])
    .filter((t) => t.length > 2 && !STOP.has(t) && !/^\d+$/.test(t));
}

/** Document frequencies over the course's sentences, for IDF weights. */
export class DocumentStats {
  readonly #df = new Map<string, number>();
  #sentences = 0;
  /** Distinct surface forms of terms, for distractors. */
  readonly vocabulary = new Map<string, string>();

  add(text: string): void {
    for (const s of sentences(text)) {
      this.#sentences++;
      const words = s.match(/[\p{L}\p{N}][\p{L}\p{N}'-]*/gu) ?? [];
      for (const w of words) {
        const t = w.toLowerCase();
        if (t.length > 3 && !STOP.has(t) && !this.vocabulary.has(t)) this.vocabulary.set(t, w);
      }
      for (const t of new Set(terms(s))) this.#df.set(t, (this.#df.get(t) ?? 0) + 1);
    }
  }

  idf(term: string): number {
    return Math.log((1 + this.#sentences) / (1 + (this.#df.get(term) ?? 0))) + 1;
  }
}

interface Scored {
  text: string;
  page: number;
  index: number;
  score: number;
}

function score(lesson: LessonSource, doc: DocumentStats): Scored[] {
  const tf = new Map<string, number>();
  const all = lesson.passages.flatMap((p) =>
    sentences(p.text).map((text) => ({ text, page: p.page }))
  );
  for (const s of all) for (const t of terms(s.text)) tf.set(t, (tf.get(t) ?? 0) + 1);
  return all.map((s, index) => {
    const ts = terms(s.text);
    const weight = ts.reduce((a, t) => a + Math.log(1 + (tf.get(t) ?? 0)) * doc.idf(t), 0);
    // Favour informative, mid-length sentences.
    const length = s.text.length;
    const shape = length < 40 ? 0.5 : length > 300 ? 0.6 : 1;
    return { ...s, index, score: (weight / Math.sqrt(ts.length + 1)) * shape };
  });
}

function pickTerm(sentence: string, doc: DocumentStats): string | null {
  let best: string | null = null;
  let bestScore = 0;
  for (const w of sentence.match(/[\p{L}][\p{L}'-]*/gu) ?? []) {
    const t = w.toLowerCase();
    if (t.length < 5 || STOP.has(t)) continue;
    const s = doc.idf(t) * Math.log(t.length);
    if (s > bestScore) {
      bestScore = s;
      best = w;
    }
  }
  return best;
}

/** A deterministic hash for stable "random" choices. */
function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

function distractors(answer: string, doc: DocumentStats, count: number): string[] {
  const a = answer.toLowerCase();
  const candidates = [...doc.vocabulary.entries()]
    .filter(([t]) =>
      t !== a && Math.abs(t.length - a.length) <= 4 && !t.includes(a) && !a.includes(t)
    )
    .map(([t, surface]) => ({ surface, key: hash(t + a) }))
    .sort((x, y) => x.key - y.key);
  return candidates.slice(0, count).map((c) => c.surface);
}

export class LocalWriter implements CourseWriter {
  readonly name = "local";

  lesson(lesson: LessonSource, doc: DocumentStats): Promise<WrittenLesson> {
    const scored = score(lesson, doc);
    const ranked = [...scored].sort((a, b) => b.score - a.score || a.index - b.index);
    const summary = ranked.slice(0, 3).sort((a, b) => a.index - b.index).map((s) => s.text).join(
      " ",
    );
    const keyPoints = ranked.filter((s) => s.text.length <= 240).slice(
      0,
      Math.max(3, Math.min(7, Math.ceil(scored.length / 4))),
    )
      .sort((a, b) => a.index - b.index).map((s) => s.text);
    const quiz: QuizQuestion[] = [];
    for (const s of ranked) {
      if (quiz.length >= 5) break;
      const term = pickTerm(s.text, doc);
      if (!term) continue;
      const wrong = distractors(term, doc, 3);
      if (wrong.length < 3) continue;
      const blanked = s.text.replace(new RegExp(`\\b${escapeRegExp(term)}\\b`), "_____");
      if (blanked === s.text) continue;
      const at = hash(s.text) % 4;
      const choices = [...wrong];
      choices.splice(at, 0, term);
      quiz.push({
        question: `Fill in the blank: ${blanked}`,
        choices,
        answer: at,
        explanation: `Page ${s.page}: "${s.text}"`,
        page: s.page,
      });
    }
    return Promise.resolve({ summary, keyPoints, quiz });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
