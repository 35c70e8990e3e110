/**
 * A PDF's outline (bookmarks) read from its objects, as pdf.js's `getOutline` and
 * `getDestination` read it (pdf.js 5, through unpdf): the same items, titles, levels and
 * pages, without opening the document in pdf.js (which copies the whole file and parses it:
 * for a 10 MB upload, tens of milliseconds on the thread the uploads share).
 *
 * Items are found breadth-first from `/Outlines /First` along `/First` and `/Next`
 * references, each reference once; an item's destination is its `/A` GoTo action's `/D`,
 * else its `/Dest`; a named destination is looked up in the catalog's `/Names /Dests` tree,
 * then its `/Dests` dictionary. What pdf.js would resolve some other way (an item's
 * structure element, `/SE`) throws {@link Unsupported}, and the caller asks pdf.js.
 */
import { PdfFile, PdfName, PdfRef, type PdfValue, Unsupported } from "./pdf_objects.ts";

/** One outline item: its title, level and the page (and top) its destination points at. */
export interface OutlineEntry {
  title: string;
  /** 1-based physical page. */
  page: number;
  /** 1 = top level. */
  level: number;
  /**
   * Where on the page the entry's destination points, in points from the page top (see
   * `Line` in pdf.ts): an `/XYZ` destination's top, a `/FitH` or `/FitBH` one's, a `/FitR`
   * rectangle's top edge. Null when the destination gives none (`/Fit`, a null top): the
   * entry starts at the top of its page. Absent in outlines stored before it existed.
   */
  top?: number | null;
}

type PdfDict = Map<string, PdfValue>;

interface Item {
  title: string;
  dest: string | PdfValue[] | null;
  items: Item[];
}

/** The outline, flattened in order with levels and 1-based physical pages; [] when none. */
export function readOutline(file: PdfFile): OutlineEntry[] {
  const outlines = file.get(file.catalog.get("Outlines"));
  if (!(outlines instanceof Map)) return [];
  const first = outlines.get("First");
  if (!(first instanceof PdfRef)) return [];
  const root: Item[] = [];
  const queue: { ref: PdfRef; parent: Item[] }[] = [{ ref: first, parent: root }];
  const seen = new Set<string>([refKey(first)]);
  let head = 0; // not shift(), which moves the whole queue each time
  while (head < queue.length) {
    const { ref, parent } = queue[head++]!;
    const node = file.get(ref);
    if (node === null || node === undefined) continue;
    if (!(node instanceof Map)) throw new Unsupported("outline item");
    const title = file.get(node.get("Title"));
    const item: Item = {
      title: typeof title === "string" ? pdfString(title) : "",
      dest: destOf(file, node),
      items: [],
    };
    parent.push(item);
    for (const [key, into] of [["First", item.items], ["Next", parent]] as const) {
      const next = node.get(key);
      if (next instanceof PdfRef && !seen.has(refKey(next))) {
        queue.push({ ref: next, parent: into });
        seen.add(refKey(next));
      }
    }
  }
  const pageIndex = new Map(file.pages.map((p, i) => [p.dict, i]));
  const out: OutlineEntry[] = [];
  // Depth first, in order, with a stack of its own (no recursion, however deep the outline).
  const stack = root.map((item) => ({ item, level: 1 })).reverse();
  while (stack.length) {
    const { item, level } = stack.pop()!;
    const at = pageOf(file, pageIndex, item.dest);
    if (at !== null && item.title.trim()) {
      const view = file.pages[at.page - 1]?.view;
      const top = view ? destinationTop(at.dest.map((v) => file.get(v)), view[3]) : null;
      out.push({ title: item.title.trim(), page: at.page, level, top });
    }
    for (let i = item.items.length - 1; i >= 0; i--) {
      stack.push({ item: item.items[i]!, level: level + 1 });
    }
  }
  return out;
}

const refKey = (r: PdfRef) => `${r.num} ${r.gen}`;

/** pdf.js's `parseDestDictionary`, for the destinations a bookmark can jump to in this file. */
function destOf(file: PdfFile, node: PdfDict): string | PdfValue[] | null {
  let action = file.get(node.get("A"));
  let dest: PdfValue | undefined;
  if (!(action instanceof Map)) {
    if (node.has("Dest")) action = file.get(node.get("Dest"));
    else {
      const aa = file.get(node.get("AA"));
      action = aa;
      if (aa instanceof Map) {
        if (aa.has("D")) action = file.get(aa.get("D"));
        else if (aa.has("U")) action = file.get(aa.get("U"));
      }
    }
  }
  if (action instanceof Map) {
    const type = file.get(action.get("S"));
    if (!(type instanceof PdfName)) return null;
    if (type.name === "GoTo") dest = file.get(action.get("D"));
    // Other actions (URI, Launch, GoToR, ...) lead out of this file's pages.
  } else if (node.has("Dest")) {
    dest = file.get(node.get("Dest"));
  }
  if (dest instanceof PdfName) dest = dest.name;
  if (typeof dest === "string" && dest) return pdfString(dest, true);
  if (isExplicitDest(dest)) return dest;
  if (node.has("SE")) throw new Unsupported("outline item with a structure element");
  return null;
}

/** pdf.js's `isValidExplicitDest`. */
function isExplicitDest(dest: PdfValue | undefined): dest is PdfValue[] {
  if (!Array.isArray(dest) || dest.length < 2) return false;
  const [page, kind, ...args] = dest;
  if (!(page instanceof PdfRef) && !Number.isInteger(page)) return false;
  if (!(kind instanceof PdfName)) return false;
  let nullable = true;
  switch (kind.name) {
    case "XYZ":
      if (args.length < 2 || args.length > 3) return false;
      break;
    case "Fit":
    case "FitB":
      return args.length === 0;
    case "FitH":
    case "FitBH":
    case "FitV":
    case "FitBV":
      if (args.length > 1) return false;
      break;
    case "FitR":
      if (args.length !== 4) return false;
      nullable = false;
      break;
    default:
      return false;
  }
  return args.every((a) => typeof a === "number" || (nullable && a === null));
}

/**
 * The 1-based page of a destination, as `PdfDocument` reads pdf.js's, with the explicit
 * destination; null when none.
 */
function pageOf(
  file: PdfFile,
  pageIndex: Map<PdfDict, number>,
  dest: string | PdfValue[] | null,
): { page: number; dest: PdfValue[] } | null {
  const explicit = typeof dest === "string" ? namedDest(file, dest) : dest;
  const target = explicit?.[0];
  if (!explicit || target === undefined || target === null) return null;
  if (typeof target === "number") return { page: target + 1, dest: explicit };
  const page = file.get(target);
  const index = page instanceof Map ? pageIndex.get(page) : undefined;
  return index === undefined ? null : { page: index + 1, dest: explicit };
}

/**
 * The top an explicit destination shows, in points from the top of a page whose view's top
 * edge is `pageTop` (user space), to 0.1 point, at least 0: `[page /XYZ left top zoom]`,
 * `[page /FitH top]`, `[page /FitBH top]`, `[page /FitR left bottom right top]`; null for
 * the others and for a null top. Shared with the pdf.js path, whose kinds are `{ name }`s.
 */
export function destinationTop(dest: unknown[], pageTop: number): number | null {
  const kind = dest[1];
  const name = kind instanceof PdfName ? kind.name : (kind as { name?: unknown } | null)?.name;
  const num = (v: unknown) => typeof v === "number" && Number.isFinite(v) ? v : null;
  let top: number | null = null;
  if (name === "XYZ") top = num(dest[3]);
  else if (name === "FitH" || name === "FitBH") top = num(dest[2]);
  else if (name === "FitR") {
    const [bottom, upper] = [num(dest[3]), num(dest[5])];
    top = bottom === null || upper === null ? null : Math.max(bottom, upper);
  }
  if (top === null) return null;
  return Math.max(0, Math.round((pageTop - top) * 10) / 10) || 0;
}

/**
 * pdf.js's `getDestination`: the name tree `/Names /Dests`, then the `/Dests` dictionary;
 * when neither has the name (an unsorted tree, say), every destination by decoded name.
 */
function namedDest(file: PdfFile, name: string): PdfValue[] | null {
  const names = file.get(file.catalog.get("Names"));
  const tree = names instanceof Map && names.has("Dests") ? names.get("Dests")! : null;
  const dict = file.get(file.catalog.get("Dests"));
  const dests = dict instanceof Map ? dict : null;
  const direct = [
    tree === null ? undefined : treeLookup(file, tree, name),
    dests ? file.get(dests.get(name)) : undefined,
  ];
  for (const found of direct) {
    const dest = fetchDest(file, found);
    if (dest) return dest;
  }
  const all = new Map<string, PdfValue[]>();
  if (tree !== null) {
    for (const [key, value] of treeEntries(file, tree)) {
      const dest = fetchDest(file, value);
      if (dest) all.set(pdfString(key, true), dest);
    }
  }
  for (const [key, value] of dests ?? []) {
    const dest = fetchDest(file, file.get(value));
    const decoded = pdfString(key, true);
    if (dest && !all.has(decoded)) all.set(decoded, dest);
  }
  return all.get(name) ?? null;
}

/** pdf.js's `fetchDest`: a destination dictionary's `/D`, if it is an explicit destination. */
function fetchDest(file: PdfFile, value: PdfValue | undefined): PdfValue[] | null {
  const dest = value instanceof Map ? file.get(value.get("D")) : value;
  return isExplicitDest(dest) ? dest : null;
}

/** Every key and value of a name tree, in order (pdf.js's `getAll`). */
function treeEntries(file: PdfFile, root: PdfValue): [string, PdfValue | undefined][] {
  const out: [string, PdfValue | undefined][] = [];
  const seen = new Set<string>();
  if (root instanceof PdfRef) seen.add(refKey(root));
  const queue: PdfValue[] = [root];
  for (let i = 0; i < queue.length; i++) {
    const node = file.get(queue[i]);
    if (!(node instanceof Map)) continue;
    if (node.has("Kids")) {
      const kids = file.get(node.get("Kids"));
      if (!Array.isArray(kids)) continue;
      for (const kid of kids) {
        if (kid instanceof PdfRef) {
          if (seen.has(refKey(kid))) throw new Unsupported("name tree loop");
          seen.add(refKey(kid));
        }
        queue.push(kid);
      }
      continue;
    }
    const entries = file.get(node.get("Names"));
    if (!Array.isArray(entries)) continue;
    for (let k = 0; k + 1 < entries.length; k += 2) {
      const key = file.get(entries[k]);
      if (typeof key === "string") out.push([key, file.get(entries[k + 1])]);
    }
  }
  return out;
}

/** pdf.js's name tree lookup (`NameOrNumberTree.get`): through `/Kids` by `/Limits`. */
function treeLookup(file: PdfFile, root: PdfValue, key: string): PdfValue | undefined {
  let node = file.get(root);
  if (!(node instanceof Map)) return undefined;
  for (let depth = 0; node.has("Kids"); depth++) {
    if (depth >= 10) return undefined;
    const kids = file.get(node.get("Kids"));
    if (!Array.isArray(kids)) return undefined;
    let lo = 0;
    let hi = kids.length - 1;
    let next: PdfDict | null = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const kid = file.get(kids[mid]);
      const limits = kid instanceof Map ? file.get(kid.get("Limits")) : undefined;
      if (!(kid instanceof Map) || !Array.isArray(limits)) throw new Unsupported("name tree");
      const [low, high] = [file.get(limits[0]), file.get(limits[1])] as string[];
      if (key < low!) hi = mid - 1;
      else if (key > high!) lo = mid + 1;
      else {
        next = kid;
        break;
      }
    }
    if (!next) return undefined;
    node = next;
  }
  const entries = file.get(node.get("Names"));
  if (!Array.isArray(entries)) return undefined;
  let lo = 0;
  let hi = entries.length - 2;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = mid + (mid & 1);
    const k = file.get(entries[at]);
    if (typeof k !== "string") throw new Unsupported("name tree key");
    if (key < k) hi = at - 2;
    else if (key > k) lo = at + 2;
    else return file.get(entries[at + 1]);
  }
  return undefined;
}

/** PDFDocEncoding where it differs from Latin-1 (pdf.js's `PDFStringTranslateTable`). */
const PDF_DOC: Record<number, number> = {
  0x18: 0x2d8,
  0x19: 0x2c7,
  0x1a: 0x2c6,
  0x1b: 0x2d9,
  0x1c: 0x2dd,
  0x1d: 0x2db,
  0x1e: 0x2da,
  0x1f: 0x2dc,
};
[
  0x2022,
  0x2020,
  0x2021,
  0x2026,
  0x2014,
  0x2013,
  0x192,
  0x2044,
  0x2039,
  0x203a,
  0x2212,
  0x2030,
  0x201e,
  0x201c,
  0x201d,
  0x2018,
  0x2019,
  0x201a,
  0x2122,
  0xfb01,
  0xfb02,
  0x141,
  0x152,
  0x160,
  0x178,
  0x17d,
  0x131,
  0x142,
  0x153,
  0x161,
  0x17e,
  0,
  0x20ac,
].forEach((code, i) => {
  if (code) PDF_DOC[0x80 + i] = code;
});

/**
 * A PDF text string (bytes as chars) as text: UTF-16 or UTF-8 after a byte order mark, else
 * PDFDocEncoding; escape sequences (language marks, `\x1b...\x1b`) dropped unless kept.
 * pdf.js's `stringToPDFString`.
 */
export function pdfString(s: string, keepEscapes = false): string {
  if (s.length >= 2 && s.charCodeAt(0) >= 0xef) {
    let encoding: string | null = null;
    let body = s;
    if (s[0] === "\xfe" && s[1] === "\xff") encoding = "utf-16be";
    else if (s[0] === "\xff" && s[1] === "\xfe") encoding = "utf-16le";
    else if (s[0] === "\xef" && s[1] === "\xbb" && s[2] === "\xbf") encoding = "utf-8";
    if (encoding && encoding !== "utf-8" && body.length % 2 === 1) body = body.slice(0, -1);
    if (encoding) {
      try {
        const bytes = Uint8Array.from(body, (c) => c.charCodeAt(0) & 0xff);
        const text = new TextDecoder(encoding, { fatal: true }).decode(bytes);
        return keepEscapes || !text.includes("\x1b")
          ? text
          // deno-lint-ignore no-control-regex -- ESC delimits the escape sequences
          : text.replaceAll(/\x1b[^\x1b]*(?:\x1b|$)/g, "");
      } catch {
        // Not valid in that encoding: read as PDFDocEncoding, as pdf.js does.
      }
    }
  }
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!keepEscapes && c === 0x1b) {
      while (++i < s.length && s.charCodeAt(i) !== 0x1b) { /* skip the escape */ }
      continue;
    }
    const mapped = PDF_DOC[c];
    out += mapped ? String.fromCharCode(mapped) : s[i];
  }
  return out;
}
