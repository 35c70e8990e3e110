/**
 * A PDF's pages made fit for lessons: page furniture (running heads and feet, page numbers)
 * out, control characters out, words hyphenated at a line end joined again, and back matter
 * (contents, index, bibliography, lists of figures or tables) set apart so that it is neither
 * taught nor quizzed. Pure functions over {@link PageText}s.
 *
 * Furniture is what a page shares with other pages at the same place. A line among the three
 * at the top or the bottom of a page is furniture when, with digits and roman numerals read
 * as "#", the same text sits at the same place on other pages (three at least, two in a file
 * of up to three pages, and on most pages of their stretch: every other one for odd/even
 * heads); or when, first or last on its page and no larger than the body, it starts or ends
 * with the page's own folio: its number less the page's physical number is an offset other
 * pages' numbers share ("Chapter 2: Simple manipulations 9" on page 15, "10 agrep" on 16,
 * "ii" on 4). A lone page number first or last on its page goes too. The place is the line's
 * top (`y`, in points from the page top) when the extractor gives it, else its rank from the
 * top or the bottom of the page.
 */
import {
  bodySize,
  detectHeadings,
  documentTitle,
  type Line,
  type OutlineEntry,
  type PageText,
  titleBlock,
} from "./pdf.ts";

export type BackMatterKind = "contents" | "index" | "bibliography" | "figures";

export interface CleanedPages {
  /** The pages without furniture, with back matter pages and blocks left out. */
  pages: PageText[];
  /** Pages left out whole, with what they hold, in page order. */
  backMatter: { page: number; kind: BackMatterKind }[];
  /** Lines dropped as furniture. */
  furniture: number;
}

/** How many lines from the top and from the bottom of a page may be furniture. */
const EDGE = 3;

/** C0 and C1 control characters (tab and line breaks become spaces first). */
const CONTROL = /[\p{Cc}\u00ad\ufffd]/gu;

/** Page numbers as printed on their own: "12", "- 12 -", "Page 12", "12 of 80", "xiv". */
const FOLIO =
  /^(?:page\s+)?[-–—(\[]?\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*[-–—)\]]?(?:\s*(?:of|\/)\s*\d{1,4})?$/i;

/** A section heading that opens back matter, maybe numbered ("Appendix F References"). */
const BACK_TITLE: [RegExp, BackMatterKind][] = [
  [/^(?:table\s+of\s+)?contents$/i, "contents"],
  [/^(?:[\p{L}\s]{0,40}\s)?index$/iu, "index"],
  [
    /^(?:references|bibliography|works\s+cited|literature(?:\s+cited)?|further\s+reading)$/i,
    "bibliography",
  ],
  [/^list\s+of\s+(?:figures|tables|illustrations|listings|algorithms|plates)$/i, "figures"],
];

/** Strips a section number ("2", "A.1", "Appendix F", "Chapter 3:") from a heading. */
function unnumbered(title: string): string {
  return title.replace(
    /^(?:(?:appendix|chapter|part)\s+[\p{L}\d]{1,4}[.:]?\s+|\d+(?:\.\d+)*\.?\s+)/iu,
    "",
  )
    .trim();
}

/** What back matter a heading opens, if any. */
export function backMatterTitle(title: string): BackMatterKind | null {
  const t = unnumbered(title.replace(/\s+/g, " ").trim());
  if (t.length > 60) return null;
  for (const [re, kind] of BACK_TITLE) if (re.test(t)) return kind;
  return null;
}

/** A line of a contents, index or list of figures: leader dots or page numbers at the end. */
function isEntry(text: string): boolean {
  if (/(?:\.\s?){4,}\s*[\divxlc,–\-\s]*$/i.test(text)) return true;
  return text.length <= 70 &&
    /[\p{L})\]’'”]\s*,?\s+(?:\d{1,4}|[ivxlc]{1,6})(?:\s*[,–-]\s*\d{1,4})*$/iu.test(text);
}

/** A line of a reference list: a year, initials, or a "[12]" label. */
function isReference(text: string): boolean {
  return /\((?:1[6-9]|20)\d\d[a-z]?\)|\b(?:1[6-9]|20)\d\d[a-z]?[.,)]|^\[\d{1,3}\]|\b\p{Lu}\.\s?\p{Lu}?\.?\s\p{Lu}\p{Ll}/u
    .test(text);
}

/** The text as compared across pages: digits and roman numerals read as "#". */
function shape(text: string): string {
  return text.toLowerCase().replace(/\d+/g, "#").replace(
    /\b[ivxlcdm]+\b/g,
    (m) => isRoman(m) ? "#" : m,
  )
    .replace(/\s+/g, " ").trim();
}

function isRoman(s: string): boolean {
  return /^m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})$/i.test(s) && s.length > 0;
}

function romanValue(s: string): number {
  const v: Record<string, number> = { i: 1, v: 5, x: 10, l: 50, c: 100, d: 500, m: 1000 };
  let total = 0;
  const t = s.toLowerCase();
  for (let i = 0; i < t.length; i++) {
    const a = v[t[i]!]!;
    const b = v[t[i + 1] ?? ""] ?? 0;
    total += a < b ? -a : a;
  }
  return total;
}

/**
 * The numbers a line starts or ends with, as "side:kind:value" less the page: folio
 * candidates ("12 Chapter 2" starts, "Chapter 2: Usage 12" ends; "2.3 Usage" has none).
 */
function folioOffsets(text: string, page: number): string[] {
  const out: string[] = [];
  const sides: [string, string | undefined][] = [
    ["start", text.match(/^(\d{1,4}|[ivxlcdm]{1,7})(?=\s|$)/i)?.[1]],
    ["end", text.match(/(?<=^|\s)(\d{1,4}|[ivxlcdm]{1,7})$/i)?.[1]],
  ];
  for (const [side, p] of sides) {
    if (!p) continue;
    if (/^\d+$/.test(p)) out.push(`${side}:arabic:${Number(p) - page}`);
    else if (isRoman(p)) out.push(`${side}:roman:${romanValue(p) - page}`);
  }
  return out;
}

/** Control characters out, spaces collapsed. */
export function cleanText(text: string): string {
  return text.replace(/[\t\n\r\f\v]/g, " ").replace(CONTROL, "").replace(/\s+/g, " ").trim();
}

/** Where an edge line stands: its place key, its rank from its edge, which edge. */
interface Place {
  key: string;
  rank: number;
  top: boolean;
}

/** The places of a page's edge lines (by line index): the lines that may be furniture. */
function edgePlaces(lines: Line[]): Map<number, Place> {
  const places = new Map<number, Place>();
  // (Read back from JSON, a line of an older extraction may lack its `y`.)
  const placed = lines.length > 0 && lines.every((l) => typeof l.y === "number");
  const order = lines.map((_, i) => i);
  if (placed) order.sort((a, b) => lines[a]!.y - lines[b]!.y);
  const n = order.length;
  for (let r = 0; r < Math.min(EDGE, n); r++) {
    const top = order[r]!;
    const bottom = order[n - 1 - r]!;
    if (!places.has(top)) {
      places.set(top, {
        key: placed ? `y${Math.round(lines[top]!.y)}` : `t${r}`,
        rank: r,
        top: true,
      });
    }
    if (!places.has(bottom)) {
      places.set(bottom, {
        key: placed ? `y${Math.round(lines[bottom]!.y)}` : `b${r}`,
        rank: r,
        top: false,
      });
    }
  }
  return places;
}

/**
 * Which lines of each page are furniture (a set of line indexes per page), by repetition at
 * the same place and by folios (see the module doc).
 */
export function findFurniture(pages: PageText[]): Map<number, Set<number>> {
  const withText = pages.filter((p) => p.lines.length > 0);
  const body = bodySize(pages);
  // Three pages make a pattern; in a file of two or three pages, two do.
  const repeats = withText.length <= 3 ? 2 : 3;
  const add = (m: Map<string, Set<number>>, k: string, page: number) => {
    if (!m.has(k)) m.set(k, new Set());
    m.get(k)!.add(page);
  };
  // Pages by place and shape; pages by folio offset, of any edge line and of those with words.
  const groups = new Map<string, Set<number>>();
  const folios = new Map<string, Set<number>>();
  const heads = new Map<string, Set<number>>();
  // Set no larger than the body: chapters opening on pages in a row are numbered in step
  // with them too ("11 Graphical User Interface" on page 178, "12 ..." on 179).
  const mayCarry = (l: Line, rank: number) =>
    rank <= 1 && l.text.length <= 100 && l.size <= body * 1.05;
  // At the foot, a number opening a line starts a footnote ("2 for some clients ..."), which
  // may run in step with the pages too: there, only a number ending the line is a folio.
  const offsetsOf = (l: Line, place: Place, page: number) =>
    mayCarry(l, place.rank)
      ? folioOffsets(l.text, page).filter((o) =>
        place.top || FOLIO.test(l.text) || o.startsWith("end:")
      )
      : [];
  const edges = withText.map((p) => {
    const places = edgePlaces(p.lines);
    for (const [i, place] of places) {
      const l = p.lines[i]!;
      add(groups, `${place.key}\u0000${shape(l.text)}`, p.page);
      for (const o of offsetsOf(l, place, p.page)) {
        add(folios, o, p.page);
        if (!FOLIO.test(l.text)) add(heads, o, p.page);
      }
    }
    return { page: p, places };
  });
  const common = (o: string) => (folios.get(o)?.size ?? 0) >= repeats;
  // Furniture stands on most pages of its stretch (every other one for odd/even heads); a
  // heading such as "Arguments" at the top of scattered pages does not.
  const ordinal = new Map(withText.map((p, i) => [p.page, i]));
  const repeated = (g: string) => {
    const at = groups.get(g);
    if (!at || at.size < repeats) return false;
    let first = Infinity;
    let last = -Infinity;
    for (const n of at) {
      first = Math.min(first, ordinal.get(n)!);
      last = Math.max(last, ordinal.get(n)!);
    }
    return at.size >= (last - first + 1) * 0.4;
  };
  const out = new Map<number, Set<number>>();
  for (const { page: p, places } of edges) {
    const drop = new Set<number>();
    for (const [i, place] of places) {
      const { key, rank } = place;
      const l = p.lines[i]!;
      const s = shape(l.text);
      const offsets = offsetsOf(l, place, p.page);
      if (FOLIO.test(l.text)) {
        // A lone number: at the very top or bottom, or where the page's folio stands; a
        // capital roman numeral (a figure's "X") only where folios stand.
        const plain = /\d|^[ivxlcdm]+$/.test(l.text);
        if ((rank === 0 && plain) || offsets.some(common)) drop.add(i);
      } else if (offsets.some((o) => common(o) && (heads.get(o)?.size ?? 0) >= 2)) {
        // A head carrying the page's folio as other heads carry theirs ("66 c", "agrep 9").
        drop.add(i);
      } else if (
        // (Not a larger line: a book's title on its title page is not its running head.)
        /\p{L}/u.test(s) && l.text.length <= 120 && l.size <= body * 1.15 &&
        repeated(`${key}\u0000${s}`)
      ) drop.add(i);
    }
    if (drop.size) out.set(p.page, drop);
  }
  return out;
}

/**
 * Words hyphenated at a line end joined again ("op-" / "tional" → "optional"), unless the
 * document writes the hyphenated form mid-line ("user-defined") and never the joined one, or
 * the first part is a prefix that keeps its hyphen ("non-numeric", "self-contained"), or the
 * second starts with a capital ("S-" / "Plus" → "S-Plus").
 */
function joinHyphens(pages: PageText[]): PageText[] {
  const words = new Set<string>();
  for (const p of pages) {
    for (const l of p.lines) {
      for (const w of l.text.toLowerCase().match(/[\p{L}][\p{L}-]*[\p{L}]/gu) ?? []) words.add(w);
    }
  }
  return pages.map((p) => {
    const lines = p.lines.map((l) => ({ ...l }));
    for (let i = 0; i + 1 < lines.length; i++) {
      const line = lines[i]!;
      const next = lines[i + 1]!;
      if (!line.text.endsWith("-")) continue;
      const head = line.text.match(/(\p{L}+)-$/u);
      const tail = next.text.match(/^(\p{L}+)([.,;:!?)\]]*)(?:\s+|$)/u);
      if (!head || !tail) continue;
      const joined = `${head[1]}${tail[1]}`.toLowerCase();
      const hyphened = `${head[1]}-${tail[1]}`.toLowerCase();
      // A capital after the break is a compound's ("S-" / "Plus": "S-Plus"), not a split word's.
      const keepHyphen = /^\p{Lu}/u.test(tail[1]!) || (words.has(hyphened) && !words.has(joined)) ||
        /^(?:non|self|well|half|ill|all|ex|quasi|semi|cross)$/i.test(head[1]!);
      line.text = line.text.slice(0, keepHyphen ? undefined : -1) + tail[1] + tail[2];
      next.text = next.text.slice(tail[0].length).trim();
    }
    return { page: p.page, lines: lines.filter((l) => l.text.length > 0) };
  });
}

/**
 * Back matter: pages that are a contents, an index, a bibliography or a list of figures
 * (opened by such a heading, or continuing the one before with the same kind of lines, or
 * made mostly of entries ending in page numbers), and blocks of such matter inside a page
 * (a "Contents" heading on a title page, "References" after a paper's conclusion).
 */
function splitBackMatter(
  pages: PageText[],
  title: { page: number; lines: Set<number> } | null,
): CleanedPages {
  const body = bodySize(pages);
  const kept: PageText[] = [];
  const backMatter: CleanedPages["backMatter"] = [];
  let open: BackMatterKind | null = null;
  // Whether a page of prose has gone by (the first page with text, a title page, aside).
  let bodySeen = false;
  const first = pages.find((p) => p.lines.length > 0)?.page;
  for (const p of pages) {
    const last = kept.at(-1);
    if (last && last.page !== first) bodySeen ||= last.lines.length >= 5;
    const lines = p.lines;
    if (lines.length === 0) {
      kept.push(p);
      continue;
    }
    const entries = lines.filter((l) => isEntry(l.text)).length;
    const references = lines.filter((l) => isReference(l.text)).length;
    const listLike = lines.length >= 3 && entries / lines.length >= 0.5;
    // Set as a heading (larger than the body), or heading a list ("Index" over its entries),
    // and followed by what it heads (a title page's "Reference Index" is not).
    const headingAt = lines.findIndex((l, i) => {
      const kind = backMatterTitle(l.text);
      if (
        !kind || (p.page === title?.page && title.lines.has(i)) ||
        !(l.size > body * 1.05 || (listLike && l.size >= body * 0.98))
      ) return false;
      const next = lines[i + 1];
      if (next === undefined) return i <= 1;
      // (A heading as large next: an empty block, only the heading goes.)
      if (next.size >= l.size * 0.95) return true;
      return kind === "bibliography"
        ? isReference(next.text)
        : isEntry(next.text) || /^\S{1,2}$/u.test(next.text);
    });
    const heading = headingAt >= 0 ? backMatterTitle(lines[headingAt]!.text) : null;
    // Another heading above the body size, not back matter: the back matter has ended.
    const bodyHeading = lines.slice(0, 3).some((l) =>
      l.size > body * 1.1 && !backMatterTitle(l.text) && !isEntry(l.text) &&
      !/^\p{L}$|^[^\p{L}\d]{1,3}$/u.test(l.text)
    );
    // The block a heading opens: to the next heading as large (words, not an index's "^"),
    // or the end of the page.
    let end = headingAt + 1;
    if (heading) {
      const size = lines[headingAt]!.size;
      const ends = (l: Line) =>
        l.size >= size * 0.95 && !isEntry(l.text) && /\p{L}{2}/u.test(l.text);
      while (end < lines.length && !ends(lines[end]!)) end++;
    }
    let kind: BackMatterKind | null = null;
    if (heading && headingAt <= 1 && end === lines.length) kind = heading;
    else if (heading) kind = null;
    else if (open && !bodyHeading) {
      const continues = open === "bibliography" ? references / lines.length >= 0.25 : listLike;
      if (continues) kind = open;
    } else if (!heading && !bodyHeading && lines.length >= 8 && entries / lines.length >= 0.7) {
      // A list before the body is its contents; after, an index unless it is numbered.
      const numbered = lines.filter((l) => /^(?:\d+(?:\.\d+)*|[A-Z]\.\d+)\s/.test(l.text)).length;
      kind = !bodySeen || numbered / entries >= 0.5 ? "contents" : "index";
    }
    if (kind) {
      backMatter.push({ page: p.page, kind });
      open = kind;
      continue;
    }
    open = null;
    if (heading) {
      // A block inside the page ("References" after a conclusion, "Contents" on a title page).
      kept.push({ page: p.page, lines: [...lines.slice(0, headingAt), ...lines.slice(end)] });
      if (end === lines.length) open = heading;
      continue;
    }
    kept.push(p);
  }
  return { pages: kept, backMatter, furniture: 0 };
}

/**
 * The pages cleaned: control characters out, furniture out, hyphenated line ends joined,
 * back matter set apart.
 */
export function cleanPages(pages: PageText[]): CleanedPages {
  const texts = pages.map((p) => ({
    page: p.page,
    lines: p.lines.map((l) => ({ ...l, text: cleanText(l.text) })).filter((l) => l.text),
  }));
  const furniture = findFurniture(texts);
  let dropped = 0;
  const bare = texts.map((p) => {
    const drop = furniture.get(p.page);
    if (!drop) return p;
    dropped += drop.size;
    return { page: p.page, lines: p.lines.filter((_, i) => !drop.has(i)) };
  });
  const joined = joinHyphens(bare);
  // The title page's lines open no back matter (a manual's subtitle "Reference Index").
  const title = titleBlock(joined);
  const split = splitBackMatter(
    joined,
    title ? { page: title.page, lines: new Set(title.lines) } : null,
  );
  return { ...split, furniture: dropped };
}

export interface PreparedFile extends CleanedPages {
  /** The outline without back matter entries, or headings found in the text. */
  outline: OutlineEntry[];
  /** The document's title from its first page, when it has one. */
  title: string | null;
}

/**
 * A file's pages and structure for the course: {@link cleanPages}, the outline without the
 * entries of back matter (or, with no outline, headings detected in the cleaned text), and
 * the title from the title page.
 */
export function prepareFile(pages: PageText[], outline: OutlineEntry[]): PreparedFile {
  const cleaned = cleanPages(pages);
  const back = new Set(cleaned.backMatter.map((b) => b.page));
  const title = documentTitle(cleaned.pages);
  const kept = outline.filter((e) => !back.has(e.page) && !backMatterTitle(e.title));
  // An outline of back matter alone ("Contents", "Index") says nothing of the body.
  const entries = kept.length > 0 ? kept : detectHeadings(cleaned.pages);
  // The title page's lines (authors, dates, affiliations) are not lesson text.
  const block = titleBlock(cleaned.pages);
  const drop = new Set(block?.lines);
  return {
    ...cleaned,
    pages: cleaned.pages.map((p) =>
      p.page === block?.page ? { page: p.page, lines: p.lines.filter((_, i) => !drop.has(i)) } : p
    ),
    outline: entries.filter((e) => !back.has(e.page) && !backMatterTitle(e.title)),
    title,
  };
}

/**
 * {@link prepareFile} of pages given as JSON text (`[{ "page": 1, "lines": [...] }, ...]`, as
 * the page store returns them), or `null` when no page has a line (`NO_TEXT`). The text form
 * lets the work, the parse included, run in a worker.
 */
export function prepareText(pages: string, outline: OutlineEntry[]): PreparedFile | null {
  const parsed = JSON.parse(pages) as PageText[];
  if (parsed.every((p) => p.lines.length === 0)) return null;
  return prepareFile(parsed, outline);
}
