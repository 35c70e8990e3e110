/**
 * Upstream fontkit 2.x behind the interface pdf-lib's font embedders call
 * (`PDFDocument.registerFontkit`). pdf-lib 1.17 was written against its fork
 * `@pdf-lib/fontkit` 1.1.1, whose subsets lose glyphs; upstream's subsetter does not.
 *
 * The bridge:
 * - `create()` returns the font of a byte array parsed once per process (the same bytes give
 *   the same parsed font, so a document does not parse a 3 MB font again);
 * - a subset's `encodeStream()` (what pdf-lib reads) is upstream's `encode()` as one chunk;
 * - `layout()` takes its direction from a leading override mark: text that starts with
 *   U+202E (RIGHT-TO-LEFT OVERRIDE) is shaped as right-to-left (glyphs come out in visual
 *   order), U+202D (LEFT-TO-RIGHT OVERRIDE) as left-to-right; the mark itself is not drawn.
 *   pdf-lib passes only the text, and the bidi step (`bidi.ts`) decides the direction, not
 *   fontkit's guess from the script (Arabic-Indic digits are Arabic script but read left to
 *   right);
 * - left-to-right text in scripts that need no shaping (Latin, Greek, Cyrillic, CJK, Hangul
 *   syllables, no combining marks) is mapped to glyphs through the cmap, without fontkit's
 *   OpenType engine (the costly part of writing a document): pdf-lib draws glyphs at their
 *   advance widths and ignores the positions (kerning) shaping computes, and these scripts
 *   need no substitution.
 */
import * as upstream from "fontkit";
import type { PDFDocument } from "pdf-lib";

/** pdf-lib's fontkit interface (its type is not exported by name). */
export type PdfLibFontkit = Parameters<PDFDocument["registerFontkit"]>[0];
type PdfLibFont = ReturnType<PdfLibFontkit["create"]>;

/** The part of an upstream fontkit font the documents use directly. */
interface Glyph {
  id: number;
  advanceWidth: number;
  codePoints: number[];
}

export interface FontkitFont {
  readonly unitsPerEm: number;
  readonly ascent: number;
  readonly descent: number;
  readonly postscriptName: string;
  hasGlyphForCodePoint(codePoint: number): boolean;
  getGlyph(id: number, codePoints: number[]): Glyph;
  glyphForCodePoint(codePoint: number): Glyph;
  layout(
    text: string,
    features?: unknown,
    script?: string,
    language?: string,
    direction?: "ltr" | "rtl",
  ): { glyphs: Glyph[]; positions: { xAdvance: number }[] };
  createSubset(): { includeGlyph(glyph: unknown): number; encode(): Uint8Array };
}

export const RTL_MARK = "\u202e";
export const LTR_MARK = "\u202d";

const UNSHAPED =
  /^[\p{Script=Latin}\p{Script=Greek}\p{Script=Cyrillic}\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Common}\uac00-\ud7a3]*$/u;
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;

/** Text whose glyphs are its characters' (no shaping needed). */
export function needsNoShaping(text: string): boolean {
  return UNSHAPED.test(text) && !IGNORABLE.test(text);
}

const parsed = new WeakMap<Uint8Array, FontkitFont>();

/** The upstream font of `bytes`, parsed on first use. */
export function fontOf(bytes: Uint8Array): FontkitFont {
  let font = parsed.get(bytes);
  if (!font) {
    font = (upstream as unknown as { create(b: Uint8Array): FontkitFont }).create(bytes);
    parsed.set(bytes, font);
  }
  return font;
}

/** Code points below this have their glyph id cached (fontkit decodes the cmap per lookup). */
const CACHED_BELOW = 0x30000;
const glyphIds = new WeakMap<FontkitFont, Int32Array>();

/** The glyph id of a code point in the font (0, the .notdef glyph, when it has none). */
export function glyphIdOf(font: FontkitFont, codePoint: number): number {
  if (codePoint >= CACHED_BELOW) return font.glyphForCodePoint(codePoint).id;
  let ids = glyphIds.get(font);
  // 768 kB a font, allocated on its first lookup.
  if (!ids) glyphIds.set(font, ids = new Int32Array(CACHED_BELOW).fill(-1));
  let id = ids[codePoint]!;
  if (id < 0) ids[codePoint] = id = font.glyphForCodePoint(codePoint).id;
  return id;
}

/** A view of an upstream font with pdf-lib's method shapes. */
function bridge(font: FontkitFont): PdfLibFont {
  return new Proxy(font, {
    get(target, key, receiver) {
      if (key === "layout") {
        return function layout(text: string, features?: unknown) {
          const mark = text[0];
          if (mark !== LTR_MARK && mark !== RTL_MARK) return target.layout(text, features);
          const run = text.slice(1);
          if (mark === LTR_MARK && needsNoShaping(run)) {
            const glyphs: Glyph[] = [];
            for (const ch of run) {
              const cp = ch.codePointAt(0)!;
              glyphs.push(target.getGlyph(glyphIdOf(target, cp), [cp]));
            }
            return { glyphs };
          }
          const shaped = target.layout(
            run,
            features,
            undefined,
            undefined,
            mark === RTL_MARK ? "rtl" : "ltr",
          );
          const glyphs = shaped.glyphs.flatMap((glyph, i) => {
            // fontkit hides a default-ignorable character (soft hyphen, ZWNJ) behind a space
            // glyph with no advance; pdf-lib would draw the space's width: leave it out.
            if (glyph.codePoints[0] === 0x20 && shaped.positions[i]?.xAdvance === 0) return [];
            // A ligature's characters in visual order: PDF readers (poppler, pdf.js) reverse
            // a right-to-left glyph's text with the glyphs; logical order would come out swapped.
            if (mark === RTL_MARK && glyph.codePoints.length > 1) {
              return [
                Object.create(glyph, { codePoints: { value: [...glyph.codePoints].reverse() } }),
              ];
            }
            return [glyph];
          });
          return { glyphs };
        };
      }
      if (key === "createSubset") {
        return function createSubset() {
          const subset = target.createSubset();
          return {
            includeGlyph: (glyph: unknown) => subset.includeGlyph(glyph),
            encodeStream() {
              const bytes = subset.encode();
              const stream = {
                on(event: "data" | "end", callback: (data: Uint8Array) => unknown) {
                  // pdf-lib registers data, then end: both can run as they are registered.
                  if (event === "data") callback(bytes);
                  else callback(new Uint8Array());
                  return stream;
                },
              };
              return stream;
            },
          };
        };
      }
      const value = Reflect.get(target, key, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as unknown as PdfLibFont;
}

/** Upstream fontkit as pdf-lib's `Fontkit`: `doc.registerFontkit(fontkit)`. */
export const fontkit: PdfLibFontkit = {
  create: (bytes: Uint8Array) => bridge(fontOf(bytes)),
};
