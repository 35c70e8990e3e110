/**
 * A file's modules and lessons, each lesson cut from the text at its outline positions.
 *
 * An outline entry starts at its destination: its page and, on it, its `top` (points from the
 * page top, as a line's `y`; see `pdf.ts`). An entry without a top starts at the line that
 * carries its title on that page (a numbered heading such as "1.2 Title" counts), else at the
 * top of the page. A lesson's text runs from its entry's start to the next entry's start
 * (levels 1 and 2; deeper entries stay inside their lesson), across pages: two entries on
 * the same page share that page's text by position, not the whole page each. Entries are
 * taken in the order of their starts (the outline's order where two start at one place).
 *
 * A line is at or after a start `(page, top)` when it is on a later page, or on that page
 * with its baseline (`y + size`) below `top - 1`: a destination points at or just above its
 * heading, and the line before the heading ends well above it.
 *
 * Modules are the top-level entries, lessons the second-level ones. Entries with little text
 * of their own (fewer than {@link MIN_LESSON_WORDS} words, a chapter heading followed at once
 * by its first section, say) make no lesson of their own:
 *
 * - a chapter's own text (before its first section) is an introduction lesson, titled as the
 *   chapter, only when it has that many words; else it opens the first section's lesson;
 * - a section with less is joined to the next lesson of its module (the last one to the one
 *   before), under both titles ("A / B");
 * - a chapter without sections is one lesson; one without any text but its heading is left
 *   out.
 *
 * Words are counted without those of the entry's heading line.
 *
 * Without an outline (nor headings found by font size), a file is one module (named
 * `fileName`: the document's title when it has one) of lessons of ten pages.
 */
import type { Line, OutlineEntry, PageText } from "./pdf.ts";

/** Fewer words than this of its own, and an entry makes no lesson of its own. */
export const MIN_LESSON_WORDS = 30;

/** Where a lesson starts or ends: a page and, on it, a top (-Infinity: the page's top). */
export interface Position {
  page: number;
  top: number;
}

export interface PlannedLesson {
  title: string;
  /** Where the lesson's text starts (inclusive). */
  start: Position;
  /** Where the next lesson starts (exclusive); `null`: the end of the file. */
  end: Position | null;
  /** First and last pages with text of the lesson. */
  from: number;
  to: number;
}

export interface PlannedModule {
  title: string;
  lessons: PlannedLesson[];
}

/** Dot leaders of contents and index pages ("Parsing . . . . 12"): noise for search and answers. */
const LEADER = /(?:\.\s?){6,}/;

/** A line's text as lessons and search read it ("" for contents/index leader lines). */
function lineText(l: Line): string {
  return LEADER.test(l.text) ? "" : l.text;
}

/** A page's text for lessons and search, without contents/index leader lines. */
export function pageText(p: PageText): string {
  return p.lines.map(lineText).filter(Boolean).join(" ");
}

/** Whether line `l` of page `page` is at or after `at`. */
function atOrAfter(page: number, l: Line, at: Position): boolean {
  if (page !== at.page) return page > at.page;
  // Lines stored without a position (none are, once re-extracted) count from the page top.
  return at.top === -Infinity || (l.y ?? Infinity) + l.size > at.top - 1;
}

/**
 * The text of `pages` from `start` (inclusive) to `end` (exclusive; null: to the end), a
 * passage per page that has some, with its page; without the lines `skip` says to leave out
 * (headings, say, which would otherwise run into the sentence after them).
 */
export function passagesBetween(
  pages: PageText[],
  start: Position,
  end: Position | null,
  skip?: (text: string) => boolean,
): { text: string; page: number }[] {
  const out: { text: string; page: number }[] = [];
  for (const p of pages) {
    if (p.page < start.page) continue;
    if (end && p.page > end.page) break;
    const text = p.lines.filter((l) =>
      atOrAfter(p.page, l, start) && !(end && atOrAfter(p.page, l, end)) && !skip?.(l.text)
    ).map(lineText).filter(Boolean).join(" ");
    if (text) out.push({ text, page: p.page });
  }
  return out;
}

const norm = (s: string) => s.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();

const NUMBERING = new Set(["chapter", "section", "part", "appendix"]);

/**
 * Recognises the lines that carry one of `titles`: the title alone, or after a short
 * numbering ("1.2 Title", "Chapter 3 Title", "A.1 Title"), letter case and punctuation aside.
 */
export function headingLines(titles: Iterable<string>): (text: string) => boolean {
  const wanted = new Set([...titles].map(norm).filter(Boolean));
  return (text) => {
    const words = norm(text).split(" ");
    if (wanted.has(words.join(" "))) return true;
    for (let k = 1; k <= 4 && k < words.length; k++) {
      const w = words[k - 1]!;
      if (w.length > 3 && !(k === 1 && NUMBERING.has(w))) break;
      if (words.slice(0, k).join(" ").length > 14) break;
      if (wanted.has(words.slice(k).join(" "))) return true;
    }
    return false;
  };
}

const isTitleLine = (text: string, title: string) => headingLines([title])(text);

/** The `y` of the first line on `page` that carries `title`; null when none does. */
function titleLine(page: PageText | undefined, title: string): number | null {
  const line = page?.lines.find((l) => isTitleLine(l.text, title));
  return line?.y ?? null;
}

const wordCount = (ps: { text: string }[]) =>
  ps.reduce((n, p) => n + (p.text.match(/\S+/g)?.length ?? 0), 0);

interface Segment {
  title: string;
  level: number;
  start: Position;
  end: Position | null;
  /** Whether any line is in it (its heading, say). */
  any: boolean;
  /** Its words, those of its heading line (the first, when it carries the title) not counted. */
  words: number;
  from: number;
  to: number;
}

function segment(
  pages: PageText[],
  title: string,
  level: number,
  start: Position,
  end: Position | null,
): Segment {
  const ps = passagesBetween(pages, start, end);
  const first = pages.find((p) => p.page === ps[0]?.page)?.lines
    .find((l) => atOrAfter(ps[0]!.page, l, start) && lineText(l));
  const heading = first && isTitleLine(first.text, title) ? wordCount([first]) : 0;
  return {
    title,
    level,
    start,
    end,
    any: ps.length > 0,
    words: wordCount(ps) - heading,
    from: ps[0]?.page ?? start.page,
    to: ps.at(-1)?.page ?? start.page,
  };
}

interface Item {
  lesson: PlannedLesson;
  any: boolean;
  words: number;
}

const item = (s: Segment): Item => ({
  lesson: { title: s.title, start: s.start, end: s.end, from: s.from, to: s.to },
  any: s.any,
  words: s.words,
});

/** `a` and the lesson right after it as one lesson, titled `title` (both titles by default). */
function join(a: Item, b: Item, title = `${a.lesson.title} / ${b.lesson.title}`): Item {
  const from = a.any ? a.lesson.from : b.lesson.from;
  const to = b.any ? b.lesson.to : a.lesson.to;
  return {
    lesson: { title, start: a.lesson.start, end: b.lesson.end, from, to },
    any: a.any || b.any,
    words: a.words + b.words,
  };
}

/** A file's modules and lessons (see the module doc). */
export function structure(
  outline: OutlineEntry[],
  pages: PageText[],
  fileName: string,
): PlannedModule[] {
  const last = pages.at(-1)?.page ?? 1;
  const byPage = new Map(pages.map((p) => [p.page, p]));
  const entries = outline.filter((e) => e.level <= 2 && e.page >= 1 && e.page <= last)
    .map((e, i) => {
      const top = e.top ?? titleLine(byPage.get(e.page), e.title);
      return { title: e.title, level: e.level, i, at: { page: e.page, top: top ?? -Infinity } };
    })
    // Reading order; entries at one position keep the outline's order.
    .sort((a, b) => a.at.page - b.at.page || a.at.top - b.at.top || a.i - b.i);
  if (entries.length === 0) {
    const lessons: PlannedLesson[] = [];
    for (let from = 1; from <= last; from += 10) {
      const to = Math.min(last, from + 9);
      lessons.push({
        title: `Pages ${from}-${to}`,
        start: { page: from, top: -Infinity },
        end: to < last ? { page: to + 1, top: -Infinity } : null,
        from,
        to,
      });
    }
    return [{ title: fileName.replace(/\.pdf$/i, ""), lessons }];
  }
  const segments = entries.map((e, i) =>
    segment(pages, e.title, e.level, e.at, entries[i + 1]?.at ?? null)
  );
  // Modules: a top-level segment (its own text) and the sections under it.
  const groups: { head: Segment | null; title: string; sections: Segment[] }[] = [];
  for (const s of segments) {
    if (s.level === 1 || groups.length === 0) {
      groups.push(
        s.level === 1
          ? { head: s, title: s.title, sections: [] }
          : { head: null, title: s.title, sections: [s] },
      );
    } else groups.at(-1)!.sections.push(s);
  }
  const modules: PlannedModule[] = [];
  for (const g of groups) {
    const items = g.sections.map(item);
    if (g.head) {
      const head = item(g.head);
      if (items.length === 0) {
        if (head.words > 0) items.push(head);
      } else if (head.words >= MIN_LESSON_WORDS) items.unshift(head);
      else if (g.head.any) items[0] = join(head, items[0]!, items[0]!.lesson.title);
    }
    // Sections with too little text of their own join the next one (the last, the one before).
    const kept: Item[] = [];
    let carry: Item | null = null;
    for (const it of items) {
      const cur: Item = carry ? join(carry, it) : it;
      carry = null;
      if (cur.words < MIN_LESSON_WORDS) carry = cur;
      else kept.push(cur);
    }
    if (carry) kept.push(kept.length ? join(kept.pop()!, carry) : carry);
    if (kept.length > 0) modules.push({ title: g.title, lessons: kept.map((k) => k.lesson) });
  }
  return modules;
}
