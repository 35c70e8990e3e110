/**
 * Writes pdf_fonts_data.ts from pdf.js's own tables, so the fast text path reads simple
 * fonts as pdf.js does. Run by hand when the pdf.js version (in `unpdf`) changes:
 *
 *   npm pack pdfjs-dist@6.1.200 && tar xzf pdfjs-dist-6.1.200.tgz
 *   deno run -R -W=actors/courses actors/courses/pdf_fonts_data_gen.ts package/build/pdf.worker.mjs
 */
type Table = Record<string, unknown>;

const src = await Deno.readTextFile(Deno.args[0] ?? "package/build/pdf.worker.mjs");

/** The source of a `const name = getLookupTableFactory(function (t) { ... });` table. */
function table(name: string): string {
  const i = src.indexOf(`const ${name} = getLookupTableFactory(`);
  if (i < 0) throw new Error(`${name} not found`);
  return src.slice(i, src.indexOf("\n});", i) + 4);
}

function encoding(name: string): string[] {
  const line = src.split("\n").find((l) => l.startsWith(`const ${name} = [`));
  if (!line) throw new Error(`${name} not found`);
  return JSON.parse(line.slice(line.indexOf("["), line.lastIndexOf("]") + 1));
}

// The tables are plain assignments to `t`: evaluated with a stand-in for pdf.js's factory.
const factory = (fill: (t: Table) => void) => {
  let t: Table | undefined;
  return () => {
    if (!t) fill(t = Object.create(null) as Table);
    return t;
  };
};
const tables = new Function(
  "getLookupTableFactory",
  `${table("getGlyphsUnicode")}\n${table("getMetrics")}\nreturn { getGlyphsUnicode, getMetrics };`,
)(factory) as { getGlyphsUnicode: () => Record<string, number>; getMetrics: () => Table };
const glyphs = tables.getGlyphsUnicode();
const metrics = tables.getMetrics();

const win = encoding("WinAnsiEncoding");
const std = encoding("StandardEncoding");
const mac = encoding("MacRomanEncoding");
const names = new Set([...win, ...std, ...mac].filter(Boolean));
for (
  const n of [
    "ff",
    "ffi",
    "ffl",
    "fi",
    "fl",
    "minus",
    "Lslash",
    "lslash",
    "dotlessi",
    "nbspace",
    "sfthyphen",
  ]
) {
  names.add(n);
}
const nameList = [...names].sort();
const unicode = nameList.map((n) => {
  const u = glyphs[n];
  if (u === undefined) throw new Error(`no Unicode for ${n}`);
  return u.toString(16);
});
const widths = Object.entries(metrics).map(([font, m]) => {
  if (typeof m === "number") return `  ${JSON.stringify(font)}: ${m},`;
  const byName = (m as () => Record<string, number>)();
  const list = nameList.map((n) => byName[n] === undefined ? "" : String(byName[n])).join(",");
  return `  ${JSON.stringify(font)}: ${JSON.stringify(list)},`;
});
const indexes = (e: string[]) =>
  JSON.stringify(e.map((n) => n ? String(nameList.indexOf(n)) : "").join(","));

await Deno.writeTextFile(
  new URL("./pdf_fonts_data.ts", import.meta.url),
  `/**
 * Tables for the fast text path (pdf_text.ts), written by pdf_fonts_data_gen.ts from pdf.js
 * 6.1.200 (Apache-2.0: glyphlist, encodings, metrics) so that both paths read simple fonts
 * alike: the glyph names of the three Latin encodings (and the f-ligatures), their Unicode
 * values, the encodings as indexes into that list, and the standard 14 fonts' widths per
 * name. Regenerate rather than edit.
 */
// deno-fmt-ignore-file

/** Glyph names, sorted. */
export const GLYPH_NAMES: readonly string[] = ${JSON.stringify(nameList.join(" "))}.split(" ");

/** Unicode (hex) of each name in {@link GLYPH_NAMES}. */
export const GLYPH_UNICODE: readonly number[] = ${
    JSON.stringify(unicode.join(","))
  }.split(",").map((h) => parseInt(h, 16));

const decodeEncoding = (s: string): (string | undefined)[] => s.split(",").map((i) => i === "" ? undefined : GLYPH_NAMES[Number(i)]);

/** Code → glyph name (pdf.js's tables; \`undefined\` where pdf.js has ""). */
export const ENCODINGS: Record<string, (string | undefined)[]> = {
  WinAnsiEncoding: decodeEncoding(${indexes(win)}),
  StandardEncoding: decodeEncoding(${indexes(std)}),
  MacRomanEncoding: decodeEncoding(${indexes(mac)}),
};

/** Widths (1/1000 em) of the standard 14 fonts by name: a number for a monospaced font, else per {@link GLYPH_NAMES} ("" = no such glyph). */
export const STANDARD_WIDTHS: Record<string, number | string> = {
${widths.join("\n")}
};
`,
);
