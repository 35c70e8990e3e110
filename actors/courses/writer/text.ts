/**
 * Text statistics the writers share: sentences (not split at initials or abbreviations),
 * terms and their document frequencies, and the words a quiz may blank out.
 */

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
  /**
   * Whole words of the course that a quiz may use (see {@link quizWord}), lower-cased, with
   * their first surface form: the distractors are drawn from them.
   */
  readonly vocabulary = new Map<string, string>();
  /** Whole occurrences of each vocabulary word. */
  readonly #count = new Map<string, number>();
  /** The vocabulary by length class, built when first asked for. */
  #byClass: Map<number, [string, string][]> | null = null;

  add(text: string): void {
    for (const { word, whole } of words(text)) {
      if (!whole || !quizWord(word)) continue;
      const t = word.toLowerCase();
      if (!this.vocabulary.has(t)) this.vocabulary.set(t, word);
      this.#count.set(t, (this.#count.get(t) ?? 0) + 1);
      this.#byClass = null;
    }
    for (const s of sentences(text)) {
      this.#sentences++;
      for (const t of new Set(terms(s))) this.#df.set(t, (this.#df.get(t) ?? 0) + 1);
    }
  }

  idf(term: string): number {
    return Math.log((1 + this.#sentences) / (1 + (this.#df.get(term) ?? 0))) + 1;
  }

  /** How many times a word occurs whole in the course (0 when it is no quiz word). */
  occurrences(word: string): number {
    return this.#count.get(word.toLowerCase()) ?? 0;
  }

  /** The vocabulary words of one {@link lengthClass}, as [lower-cased, surface] pairs. */
  ofLengthClass(cls: number): readonly [string, string][] {
    if (!this.#byClass) {
      this.#byClass = new Map();
      for (const entry of this.vocabulary) {
        const c = lengthClass(entry[1]);
        if (!this.#byClass.has(c)) this.#byClass.set(c, []);
        this.#byClass.get(c)!.push(entry);
      }
    }
    return this.#byClass.get(cls) ?? [];
  }
}

/**
 * Words left out of quizzes, as blanks and as distractors, on top of {@link STOP}: function
 * words, discourse words and the generic words of books, which carry no sentence.
 */
const QUIZ_STOP = new Set([
  ...STOP,
  ...("above across afterwards almost along already although always among amongst another " +
    "anyone anything anyway anywhere around aside away back became become becomes becoming " +
    "beforehand behind beside besides beyond cannot certain certainly chapter could couldn doing " +
    "done down else elsewhere enough especially even ever every everyone everything everywhere " +
    "example examples except fact first following follows former formerly found four further " +
    "furthermore general generally given gives given going hence hereby herein hereafter " +
    "however indeed instead itself keep kind last latter least less like likely made mainly make " +
    "makes many meanwhile mostly much myself namely near need needs neither never nevertheless " +
    "next nobody none nothing often onto others otherwise ourselves page pages part particular " +
    "perhaps please possible quite rather really regarding said same section second seem seemed " +
    "seeming seems several shall shown shows simply since something sometimes somewhere still " +
    "take taken than thanks thereafter thereby therefore therein thereupon third though three " +
    "thus together toward towards twice unless upon used useful uses using usually various " +
    "versus whatever whence whenever whereas whereby wherever whether whither whoever whole " +
    "whom whose within without yourself yourselves yet")
    .split(" "),
]);

/** Words in -ly that are no adverbs (adverbs modify a sentence, they do not carry it). */
const LY_WORDS = new Set(
  ("anomaly apply assembly butterfly comply family holy imply italy july monopoly multiply " +
    "poly reply rely supply ugly wily").split(" "),
);

/** A word: letters, with inner hyphens or apostrophes ("by-product", "cell's"). */
export const WORD = /^\p{L}+(?:['’-]\p{L}+)*$/u;
/** A roman numeral (front-matter page numbers, list items). */
const ROMAN = /^m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$/i;

/**
 * Whether a word may be a quiz answer or distractor: a word of letters (no digits, so no page
 * number, count or identifier) of 4 to 24 letters, not a stop word, numeral or adverb.
 */
export function quizWord(word: string): boolean {
  const t = word.toLowerCase();
  // Longer than any word: glyphs run together (a logo drawn as repeated text, say).
  if (t.length < 4 || t.length > 24 || !WORD.test(word) || QUIZ_STOP.has(t) || ROMAN.test(t)) {
    return false;
  }
  return !(t.length >= 6 && t.endsWith("ly") && !LY_WORDS.has(t));
}

/** The length class of a word: a question's distractors are of its answer's class. */
export function lengthClass(word: string): number {
  const n = [...word].length;
  return n <= 4 ? 0 : n <= 6 ? 1 : n <= 8 ? 2 : n <= 10 ? 3 : n <= 13 ? 4 : 5;
}

/**
 * The words of a text, stripped of the punctuation around them, each marked whole or not: the
 * two halves of a word hyphenated at a line break ("com- plicated") are no words of the text.
 */
export function words(text: string): { word: string; whole: boolean }[] {
  const out: { word: string; whole: boolean }[] = [];
  let broken = false;
  for (const raw of text.split(/\s+/)) {
    if (!raw) continue;
    const word = raw.replace(/^[^\p{L}\p{N}]+/u, "").replace(/[^\p{L}\p{N}]+$/u, "");
    const head = /\p{L}-$/u.test(raw);
    out.push({ word, whole: !head && !(broken && /^\p{Ll}/u.test(raw)) });
    broken = head;
  }
  return out;
}

export interface Sentence {
  text: string;
  /** The page the sentence starts on. */
  page: number;
  /** Where it runs onto the next page: the offset in `text` and that page. */
  next?: { at: number; page: number };
}

/** A sentence end: a stop, maybe closed by a quote or a bracket. */
const SENTENCE_END = /[.!?]["”’')\]]*$/u;

/**
 * The sentences of a lesson's passages, with their page. A page's last sentence that does not
 * end like one runs on into the next page's first sentence ("... are built" / "into the base
 * environment."): the two are one sentence, starting on the first page (a sentence runs onto
 * one page at most).
 */
export function lessonSentences(passages: { text: string; page: number }[]): Sentence[] {
  const out: Sentence[] = [];
  let open = false;
  for (const p of passages) {
    const list = sentences(p.text);
    const last = out.at(-1);
    if (open && last && !last.next && list.length > 0) {
      const at = last.text.length + 1;
      last.text = `${last.text} ${list.shift()!}`;
      last.next = { at, page: p.page };
    }
    for (const text of list) out.push({ text, page: p.page });
    open = out.length > 0 && !SENTENCE_END.test(out.at(-1)!.text);
  }
  return out;
}
