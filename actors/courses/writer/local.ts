/**
 * The local course writer.
 *
 * The local writer needs no network and no model: it is extractive and deterministic.
 * Sentences are scored by the TF-IDF weight of their terms (against the whole document), so a
 * lesson's summary is its most characteristic sentences in reading order, its key points the
 * best short ones, and its quiz is cloze questions: a key sentence with a salient term blanked
 * out, the term as the answer, and distractors drawn from the document's own terms of a
 * similar kind. Every question cites the page its sentence is on.
 */

import type { CourseWriter, LessonSource, QuizQuestion, WrittenLesson } from "./port.ts";
import {
  DocumentStats,
  lengthClass,
  lessonSentences,
  quizWord,
  type Sentence,
  terms,
  WORD,
  words,
} from "./text.ts";

interface Scored extends Sentence {
  index: number;
  score: number;
}

/** The page a sentence holds the text at `offset` on. */
function pageAt(s: Sentence, offset: number): number {
  return s.next && offset >= s.next.at ? s.next.page : s.page;
}

function score(lesson: LessonSource, doc: DocumentStats): Scored[] {
  const tf = new Map<string, number>();
  const all = lessonSentences(lesson.passages);
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

/**
 * The term a cloze question blanks: the whole word of the sentence that carries it most, by
 * its weight in the lesson (term frequency) and its rarity in the course (IDF); only quiz words
 * ({@link quizWord}) that occur whole in the course. Preferring the lesson's own terms keeps
 * one-off words (a typo, a stray identifier) out of the blank.
 */
function pickTerm(sentence: string, doc: DocumentStats, tf: Map<string, number>): string | null {
  let best: string | null = null;
  let bestScore = 0;
  for (const { word, whole } of words(sentence)) {
    if (!whole || !quizWord(word) || doc.occurrences(word) === 0) continue;
    const t = word.toLowerCase();
    const s = Math.log(1 + (tf.get(t) ?? 1)) * doc.idf(t) * Math.log(t.length);
    if (s > bestScore) {
      bestScore = s;
      best = word;
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

/**
 * Wrong choices for `answer`: whole words of the course ({@link DocumentStats.vocabulary}) of
 * the answer's length class, none a form of the answer nor a word of the sentence; words the
 * course uses more than once, and with the answer's capitalisation, first. Deterministic.
 */
function distractors(
  answer: string,
  sentence: string,
  doc: DocumentStats,
  count: number,
): string[] {
  const a = answer.toLowerCase();
  const inSentence = new Set(words(sentence).map((w) => w.word.toLowerCase()));
  const capital = /^\p{Lu}/u.test(answer);
  const candidates = doc.ofLengthClass(lengthClass(answer))
    .filter(([t]) => t !== a && !t.includes(a) && !a.includes(t) && !inSentence.has(t))
    .map(([t, surface]) => ({
      surface,
      rank: (doc.occurrences(t) > 1 ? 0 : 2) + (/^\p{Lu}/u.test(surface) === capital ? 0 : 1),
      key: hash(t + a),
    }))
    .sort((x, y) => x.rank - y.rank || x.key - y.key);
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
    // A question never repeats a key point (nor another question): its sentence is new.
    const used = new Set(keyPoints.map(normalise));
    const tf = new Map<string, number>();
    for (const s of scored) {
      for (const { word, whole } of words(s.text)) {
        if (whole) tf.set(word.toLowerCase(), (tf.get(word.toLowerCase()) ?? 0) + 1);
      }
    }
    const quiz: QuizQuestion[] = [];
    const answers = new Set<string>();
    for (const s of ranked) {
      if (quiz.length >= 5) break;
      if (used.has(normalise(s.text)) || !prose(s.text)) continue;
      const term = pickTerm(s.text, doc, tf);
      if (!term || answers.has(term.toLowerCase())) continue;
      const wrong = distractors(term, s.text, doc, 3);
      if (wrong.length < 3) continue;
      const blank = new RegExp(
        `(?<![\\p{L}\\p{N}_'’-])${escapeRegExp(term)}(?![\\p{L}\\p{N}_]|['’-]\\p{L})`,
        "u",
      );
      const found = blank.exec(s.text);
      if (!found) continue;
      const blanked = s.text.slice(0, found.index) + "_____" +
        s.text.slice(found.index + term.length);
      // The page cited is the one the answer is on (a sentence may run onto the next).
      const page = pageAt(s, found.index);
      used.add(normalise(s.text));
      answers.add(term.toLowerCase());
      const at = hash(s.text) % 4;
      const choices = [...wrong];
      choices.splice(at, 0, term);
      quiz.push({
        question: `Fill in the blank: ${blanked}`,
        choices,
        answer: at,
        explanation: `Page ${page}: "${s.text}"`,
        page,
      });
    }
    return Promise.resolve({ summary, keyPoints, quiz });
  }
}

/**
 * Whether a sentence reads as prose, worth a question: no control characters, and most of its
 * words are words of letters (not a table row, a code listing or a list of numbers).
 */
function prose(text: string): boolean {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001F\u007F-\u009F]/.test(text)) return false;
  const all = words(text).filter((w) => w.word);
  return all.filter((w) => WORD.test(w.word)).length >= 0.6 * all.length;
}

function normalise(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
