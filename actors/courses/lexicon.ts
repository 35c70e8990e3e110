/**
 * The lexical index's tokens, the same for the passages and the queries: lower-cased words of
 * any length, with the code punctuation that names things kept inside them. `t.test`,
 * `is.na`, `base::ls`, `.RData`, `C++`, `-l`, `%in%` stay whole tokens, and their word pieces (`t`,
 * `test`) are indexed as well, so a query for either finds them. A sentence's final period
 * or a call's parentheses are not part of a token (`lm(y ~ x).` gives `lm`, `y`, `x`).
 *
 * The passages' tokens are stored as a `tsvector` literal built here (`lexemeVector`), not by
 * PostgreSQL's text-search parser, so PGlite and PostgreSQL index exactly the same lexemes
 * and the queries (`tsqueryOf`) match them verbatim.
 */

/**
 * One token: an option (`-l`, `--help`), an R infix (`%in%`, `%*%`), or words joined by `.`,
 * `::`, `$`, `@`, `_`, `-`, `'`, with an optional leading `.` (`.RData`, `.First`) and an
 * optional `++` or `#` suffix (`C++`, `C#`).
 */
const TOKEN =
  /(?<![\p{L}\p{N}_])--?[\p{L}][\p{L}\p{N}_-]*|%[^%\s]{1,8}%|(?:(?<![\p{L}\p{N}_.])\.(?=\p{L}))?[\p{L}\p{N}_]+(?:(?:\.|::|\$|@|-|')[\p{L}\p{N}_]+)*(?:\+\+|#)?/gu;
const PIECE = /[\p{L}\p{N}_]+/gu;

/**
 * The singular of an English plural, by suffix alone (`membranes` → `membrane`, `classes` →
 * `class`, `bodies` → `body`); other words unchanged.
 */
export function singular(word: string): string {
  if (word.length < 4 || !/^\p{L}+$/u.test(word) || !word.endsWith("s")) return word;
  if (/[^aeiou]ies$/.test(word) && word.length > 4) return `${word.slice(0, -3)}y`;
  if (/(?:sh|ch|x|ss|z)es$/.test(word)) return word.slice(0, -2);
  if (/(?:ss|us|is|ous)$/.test(word)) return word;
  return word.slice(0, -1);
}

/**
 * Index tokens in reading order: each whole token, then its word pieces when it has several,
 * then its other inflections (`variants`).
 */
export function tokens(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(TOKEN)) {
    out.push(...forms(m[0]));
  }
  return out;
}

/** A token, its word pieces (when it has several) and its other inflections. */
export function forms(token: string): string[] {
  const out = [token];
  const pieces = token.match(PIECE) ?? [];
  if (pieces.length > 1 || (pieces.length === 1 && pieces[0] !== token)) {
    for (const p of pieces) if (p !== token) out.push(p);
  }
  for (const v of variants(token)) if (!out.includes(v)) out.push(v);
  return out;
}

/**
 * A word's other inflections found by suffix alone: its singular (`membranes` → `membrane`),
 * and the stems of a past or continuous form (`changed` → `change`, `chang`; `using` → `us`,
 * `use`), so a question and the text meet whichever form each uses. Not a word is left out.
 */
export function variants(word: string): string[] {
  if (!/^\p{L}{4,}$/u.test(word)) return [];
  const out = new Set<string>();
  const one = singular(word);
  if (one !== word) out.add(one);
  if (word.length >= 5 && word.endsWith("ed") && !word.endsWith("eed")) {
    out.add(word.slice(0, -1));
    out.add(word.slice(0, -2));
  }
  if (word.length >= 6 && word.endsWith("ing")) {
    out.add(word.slice(0, -3));
    out.add(`${word.slice(0, -3)}e`);
  }
  out.delete(word);
  return [...out];
}

/** A text's whole tokens (no pieces, no singulars), lower-cased, in reading order. */
export function wholeTokens(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? [];
}

/** Words that carry no topic in a question or a search (articles, pronouns, question words). */
export const STOP_WORDS = new Set(
  ("a an and are as at be been but by can could did do does for from had has have he her his " +
    "how i if in into is it its may might more most must no not of on or our out she should so " +
    "some such than that the their them then there these they this those to too under up us " +
    "was we were what when where which while who whom whose why will with would you your also " +
    "each other only very just any all both about after again because before being during " +
    "here once own through until me my there's what's it's i'm").split(" "),
);

/**
 * A query's distinct tokens without stop words (all of them when every token is one, so a
 * search for `if` still finds `if`).
 */
export function queryTokens(query: string): string[] {
  const all = [...new Set(tokens(query))];
  const kept = all.filter((t) => !STOP_WORDS.has(t));
  return (kept.length ? kept : all).slice(0, 64);
}

/** A quoted `tsvector`/`tsquery` lexeme: quotes and backslashes doubled. */
export function quote(lexeme: string): string {
  return `'${lexeme.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

/** PostgreSQL keeps at most 256 positions per lexeme, each at most 16383. */
const MAX_POSITIONS = 256;
const MAX_POSITION = 16383;
/** PostgreSQL refuses lexemes of 2 KB and more; longer tokens are not words anyway. */
const MAX_LEXEME = 200;

/** The `tsvector` literal of a text's tokens, with their positions (term frequencies). */
export function lexemeVector(text: string): string {
  const positions = new Map<string, number[]>();
  tokens(text).forEach((t, i) => {
    if (t.length > MAX_LEXEME) return;
    const list = positions.get(t) ?? [];
    if (list.length < MAX_POSITIONS) list.push(Math.min(i + 1, MAX_POSITION));
    positions.set(t, list);
  });
  return [...positions].map(([t, p]) => `${quote(t)}:${[...new Set(p)].join(",")}`).join(" ");
}

/** A `tsquery` literal matching any of `lexemes`. */
export function tsqueryOf(lexemes: readonly string[]): string {
  return lexemes.filter((t) => t.length <= MAX_LEXEME).map(quote).join(" | ");
}
