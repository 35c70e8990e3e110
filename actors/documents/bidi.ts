/**
 * The bidi step of drawing a line: the Unicode Bidirectional Algorithm (UAX #9, through
 * `bidi-js`) gives each character its embedding level; a line's runs are split where the
 * level changes, mirrored where right-to-left (L4: `(` becomes `)`), and put in visual
 * order (L2). A right-to-left run keeps its text in logical order: the shaper (fontkit,
 * told the direction) joins the letters in reading order and lays the glyphs out reversed.
 */
import bidiFactory from "bidi-js";

interface BidiApi {
  getEmbeddingLevels(
    text: string,
    direction?: Direction,
  ): { levels: Uint8Array; paragraphs: { start: number; end: number; level: number }[] };
  getMirroredCharacter(char: string): string | null;
}

const bidi = (bidiFactory as unknown as () => BidiApi)();

export type Direction = "ltr" | "rtl";

/** A piece of a line in one direction; `text` in logical order. */
export interface DirectedRun<T> {
  text: string;
  rtl: boolean;
  tag: T;
}

/** The paragraph's direction: its first strong character's (P2, P3); `ltr` without one. */
export function baseDirection(text: string): Direction {
  if (!RTL_SCRIPT.test(text)) return "ltr";
  return bidi.getEmbeddingLevels(text).paragraphs[0]?.level === 1 ? "rtl" : "ltr";
}

const RTL_SCRIPT =
  /[\p{Script=Arabic}\p{Script=Hebrew}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}]/u;
const CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Removes bidi formatting characters (the levels come from the paragraph's direction). */
export function withoutBidiControls(text: string): string {
  return text.replace(CONTROLS, "");
}

/**
 * `runs` (consecutive pieces of one line in logical order, each with a tag such as its font)
 * split where the embedding level changes and put in the order to draw them left to right.
 */
export function visualRuns<T>(runs: { text: string; tag: T }[], base: Direction): DirectedRun<T>[] {
  const line = runs.map((r) => r.text).join("");
  if (base === "ltr" && !RTL_SCRIPT.test(line)) {
    // No right-to-left character: a left-to-right paragraph is drawn as it is.
    return runs.map((r) => ({ text: r.text, rtl: false, tag: r.tag }));
  }
  const { levels } = bidi.getEmbeddingLevels(line, base);
  const pieces: { text: string; level: number; tag: T }[] = [];
  let at = 0;
  for (const run of runs) {
    let start = 0;
    while (start < run.text.length) {
      const level = levels[at + start]!;
      let end = start + 1;
      while (end < run.text.length && levels[at + end] === level) end++;
      let text = run.text.slice(start, end);
      if (level % 2 === 1) {
        text = [...text].map((ch) => bidi.getMirroredCharacter(ch) ?? ch).join("");
      }
      pieces.push({ text, level, tag: run.tag });
      start = end;
    }
    at += run.text.length;
  }
  // L2: from the highest level down to the lowest odd one, reverse every maximal sequence of
  // pieces at that level or higher.
  const max = Math.max(0, ...pieces.map((p) => p.level));
  const minOdd = Math.min(...pieces.map((p) => p.level % 2 === 1 ? p.level : p.level + 1));
  for (let level = max; level >= minOdd; level--) {
    let i = 0;
    while (i < pieces.length) {
      if (pieces[i]!.level < level) {
        i++;
        continue;
      }
      let j = i;
      while (j < pieces.length && pieces[j]!.level >= level) j++;
      const reversed = pieces.slice(i, j).reverse();
      pieces.splice(i, j - i, ...reversed);
      i = j;
    }
  }
  return pieces.map((p) => ({ text: p.text, rtl: p.level % 2 === 1, tag: p.tag }));
}
