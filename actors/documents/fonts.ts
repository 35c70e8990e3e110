/**
 * The fonts Troupe's PDFs are written in, shipped in `./fonts/` (the edge has no system
 * fonts) with their licences, and the choice of a font for each run of text.
 *
 * - DejaVu Sans (regular, bold): Latin, Greek, Cyrillic, Hebrew, math and symbols.
 * - Droid Sans Fallback: Chinese, Japanese, Korean (one weight: bold CJK is drawn regular).
 * - Noto Sans Arabic (regular, bold): Arabic, Persian, Urdu. DejaVu Sans has basic Arabic
 *   letters too, so Arabic-script characters ask Noto first: its forms and marks are complete.
 *
 * A font file is read (`new URL("./fonts/…", import.meta.url)`, which Deno Deploy bundles)
 * and parsed the first time a text needs it, then kept for the life of the process: at most
 * the five files (5.2 MB) and what fontkit decodes of them.
 */
import { type FontkitFont, fontOf, glyphIdOf } from "./fontkit.ts";

export type Family = "DejaVu Sans" | "Droid Sans Fallback" | "Noto Sans Arabic";
export type Weight = "regular" | "bold";

const FILES: Record<Family, Record<Weight, string>> = {
  "DejaVu Sans": { regular: "DejaVuSans.ttf", bold: "DejaVuSans-Bold.ttf" },
  "Droid Sans Fallback": { regular: "DroidSansFallback.ttf", bold: "DroidSansFallback.ttf" },
  "Noto Sans Arabic": { regular: "NotoSansArabic-Regular.ttf", bold: "NotoSansArabic-Bold.ttf" },
};

/** The order a character's font is looked for in. */
export const FALLBACK: readonly Family[] = [
  "DejaVu Sans",
  "Droid Sans Fallback",
  "Noto Sans Arabic",
];
const ARABIC_FIRST: readonly Family[] = ["Noto Sans Arabic", "DejaVu Sans", "Droid Sans Fallback"];

/** Shown for a character no font has. */
export const REPLACEMENT = "\ufffd";

export interface Face {
  family: Family;
  /** The font file's name in `./fonts/` (one face per file). */
  file: string;
  /** The file's bytes (the same array for the life of the process). */
  bytes: Uint8Array;
  font: FontkitFont;
}

const faces = new Map<string, Promise<Face>>();
/** The faces already read, for the synchronous coverage checks. */
const ready = new Map<string, Face>();

/** The face (bold falls back to regular where the family has one weight), read on first use. */
export function loadFace(family: Family, weight: Weight): Promise<Face> {
  const file = FILES[family][weight];
  let face = faces.get(file);
  if (!face) {
    face = Deno.readFile(new URL(`./fonts/${file}`, import.meta.url)).then((bytes) => ({
      family,
      file,
      bytes,
      font: fontOf(bytes),
    }));
    face.then((f) => ready.set(file, f), () => {});
    faces.set(file, face);
    face.catch(() => faces.delete(file));
  }
  return face;
}

/** A piece of text drawn in one font. */
export interface FontRun {
  text: string;
  family: Family;
}

const ARABIC = /\p{Script=Arabic}/u;
/** Spaces, punctuation, digits and combining marks: they stay in the run they are in. */
const NEUTRAL = /[\p{Script=Common}\p{Script=Inherited}]/u;

/**
 * `text` cut into runs, each in the first family of the fallback order that has all its
 * characters; a neutral character (space, punctuation, digit, combining mark) stays in the
 * current run when its font has it, so a phrase is shaped as one. A character no family has
 * becomes {@link REPLACEMENT}.
 */
export async function fontRuns(text: string, weight: Weight): Promise<FontRun[]> {
  const runs: FontRun[] = [];
  let current = null as FontRun | null;
  // Synchronous once a face is read: no await per character.
  const face = (family: Family) => ready.get(FILES[family][weight]) ?? loadFace(family, weight);
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (current && NEUTRAL.test(ch)) {
      const f = face(current.family);
      if (glyphIdOf((f instanceof Promise ? await f : f).font, cp) !== 0) {
        current.text += ch;
        continue;
      }
    }
    let family: Family | null = null;
    for (const candidate of ARABIC.test(ch) ? ARABIC_FIRST : FALLBACK) {
      const f = face(candidate);
      if (glyphIdOf((f instanceof Promise ? await f : f).font, cp) !== 0) {
        family = candidate;
        break;
      }
    }
    const piece = family ? ch : REPLACEMENT;
    family ??= FALLBACK[0]!;
    if (current?.family === family) current.text += piece;
    else runs.push(current = { text: piece, family });
  }
  return runs;
}
