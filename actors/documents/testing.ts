/**
 * Test helpers: what poppler (`pdftotext`, `pdftoppm`, from poppler-utils, which
 * tests/services.sh installs) reads and renders of a PDF. Text found is not enough: a font
 * without the glyph draws its .notdef box while the text still extracts, so the render
 * checks look at the pixels where a word is drawn.
 */
import { ok } from "node:assert/strict";

async function poppler(tool: string, args: string[], pdf: Uint8Array): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/in.pdf`, pdf);
    const out = await new Deno.Command(tool, {
      args: [...args, `${dir}/in.pdf`, ...(tool === "pdftoppm" ? [] : ["-"])],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`${tool} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    return out.stdout;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Bidi embedding marks poppler puts around right-to-left text. */
const MARKS = /[\u200e\u200f\u202a-\u202e]/g;

/** `pdftotext` of the whole document (its bidi embedding marks removed). */
export async function pdfText(pdf: Uint8Array): Promise<string> {
  return new TextDecoder().decode(await poppler("pdftotext", [], pdf)).replace(MARKS, "");
}

/** `pdftotext -layout`: lines as printed (a table's row on one line), bidi marks removed. */
export async function pdfLayoutText(pdf: Uint8Array): Promise<string> {
  return new TextDecoder().decode(await poppler("pdftotext", ["-layout"], pdf)).replace(MARKS, "");
}

/** A word as `pdftotext -bbox` places it: points from the page's top left. */
export interface WordBox {
  /** 1-based. */
  page: number;
  /** As poppler gives it: right-to-left words with their characters in visual order. */
  text: string;
  xMin: number;
  yMin: number;
  xMax: number;
  yMax: number;
}

const unescape = (s: string) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");

/** Every word of the document with its box. */
export async function wordBoxes(pdf: Uint8Array): Promise<WordBox[]> {
  const xml = new TextDecoder().decode(await poppler("pdftotext", ["-bbox"], pdf));
  const words: WordBox[] = [];
  let page = 0;
  for (
    const m of xml.matchAll(
      /<page |<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g,
    )
  ) {
    if (m[0] === "<page ") {
      page++;
      continue;
    }
    words.push({
      page,
      text: unescape(m[5]!).replace(MARKS, ""),
      xMin: Number(m[1]),
      yMin: Number(m[2]),
      xMax: Number(m[3]),
      yMax: Number(m[4]),
    });
  }
  return words;
}

/** The first word that is `text` (read in either direction). */
export function findWord(words: WordBox[], text: string): WordBox | undefined {
  const reversed = [...text].reverse().join("");
  return words.find((w) => w.text === text || w.text === reversed);
}

/** A page rendered in grey levels (0 black, 255 white). */
export interface Raster {
  width: number;
  height: number;
  dpi: number;
  pixels: Uint8Array;
}

/** Renders one page with `pdftoppm -gray`. */
export async function renderPage(pdf: Uint8Array, page: number, dpi = 150): Promise<Raster> {
  const pgm = await poppler("pdftoppm", [
    "-gray",
    "-r",
    String(dpi),
    "-f",
    `${page}`,
    "-l",
    `${page}`,
  ], pdf);
  // P5 header: magic, width, height, maxval, each followed by whitespace.
  let at = 0;
  const fields: string[] = [];
  while (fields.length < 4) {
    while (/\s/.test(String.fromCharCode(pgm[at]!))) at++;
    let field = "";
    while (!/\s/.test(String.fromCharCode(pgm[at]!))) field += String.fromCharCode(pgm[at++]!);
    fields.push(field);
  }
  at++;
  const [magic, width, height] = fields;
  if (magic !== "P5") throw new Error(`pdftoppm gave ${magic}, not a P5 grey map`);
  return { width: Number(width), height: Number(height), dpi, pixels: pgm.subarray(at) };
}

/** A region in points from the page's top left. */
export interface Box {
  xMin: number;
  yMin: number;
  xMax: number;
  yMax: number;
}

/** The dark pixels (below 128) of a region, as a bitmap of its own. */
export function inkOf(
  r: Raster,
  box: Box,
): { width: number; height: number; ink: Uint8Array; count: number } {
  const s = r.dpi / 72;
  const x0 = Math.max(0, Math.floor(box.xMin * s));
  const y0 = Math.max(0, Math.floor(box.yMin * s));
  const x1 = Math.min(r.width, Math.ceil(box.xMax * s));
  const y1 = Math.min(r.height, Math.ceil(box.yMax * s));
  const width = Math.max(0, x1 - x0);
  const height = Math.max(0, y1 - y0);
  const ink = new Uint8Array(width * height);
  let count = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (r.pixels[(y0 + y) * r.width + x0 + x]! < 128) {
        ink[y * width + x] = 1;
        count++;
      }
    }
  }
  return { width, height, ink, count };
}

/**
 * How differently two regions are inked, from 0 (the same shapes, give or take a pixel of
 * placement) to 1: the share of dark pixels of either with no dark pixel near it in the
 * other. The .notdef boxes of two missing characters score near 0; two real glyphs do not.
 */
export function difference(
  a: ReturnType<typeof inkOf>,
  b: ReturnType<typeof inkOf>,
): number {
  const near = (m: typeof a, x: number, y: number) => {
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx >= 0 && yy >= 0 && xx < m.width && yy < m.height && m.ink[yy * m.width + xx]) {
          return true;
        }
      }
    }
    return false;
  };
  const unmatched = (p: typeof a, q: typeof a) => {
    let n = 0;
    for (let y = 0; y < p.height; y++) {
      for (let x = 0; x < p.width; x++) if (p.ink[y * p.width + x] && !near(q, x, y)) n++;
    }
    return p.count ? n / p.count : 0;
  };
  return Math.max(unmatched(a, b), unmatched(b, a));
}

/** Two words of the same length per script, for {@link assertScriptsDrawn}. */
export const SCRIPT_WORDS: Record<string, [string, string]> = {
  latin: ["déjà", "naïf"],
  greek: ["θ", "γ"],
  math: ["≤", "−"],
  cyrillic: ["Жук", "яма"],
  cjk: ["中文", "漢字"],
  arabic: ["مرحبا", "كتابة"],
};

/**
 * Asserts that each pair of words is in the PDF's text (where `pdftotext -bbox` puts it) and
 * drawn with glyphs: each word has ink, and the two words of a script differ in shape (the
 * .notdef boxes of missing glyphs would look the same).
 */
export async function assertScriptsDrawn(
  pdf: Uint8Array,
  words: Record<string, [string, string]> = SCRIPT_WORDS,
): Promise<void> {
  const boxes = await wordBoxes(pdf);
  const rasters = new Map<number, Raster>();
  const inkOfWord = async (word: string) => {
    const box = findWord(boxes, word);
    ok(box, `pdftotext -bbox finds "${word}"`);
    let raster = rasters.get(box.page);
    if (!raster) rasters.set(box.page, raster = await renderPage(pdf, box.page, 200));
    return inkOf(raster, box);
  };
  for (const [script, [a, b]] of Object.entries(words)) {
    const inkA = await inkOfWord(a);
    const inkB = await inkOfWord(b);
    ok(inkA.count > 10 && inkB.count > 10, `${script}: "${a}" and "${b}" have ink`);
    ok(difference(inkA, inkB) > 0.25, `${script}: "${a}" and "${b}" have different shapes`);
  }
}
