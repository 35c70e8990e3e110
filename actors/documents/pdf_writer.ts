/**
 * The one place Troupe writes PDFs (pdf-lib): pages, a text flow with wrapping, one-line
 * text clipped to a width, and tables, in any script. Each run of text is drawn in the first
 * shipped font that has it (`fonts.ts`), subset into the document; right-to-left text goes
 * through the bidi step (`bidi.ts`) and is shaped by fontkit (Arabic letters joined).
 *
 * Drawing is asynchronous because a font is read the first time a text needs it.
 */
import { type Color, PDFDocument, type PDFFont, type PDFPage, rgb } from "pdf-lib";
import { baseDirection, type Direction, visualRuns, withoutBidiControls } from "./bidi.ts";
import { fontkit, LTR_MARK, RTL_MARK } from "./fontkit.ts";
import { type Family, fontRuns, loadFace, type Weight } from "./fonts.ts";

export const A4: [number, number] = [595.28, 841.89];

export interface TextStyle {
  /** Font size in points. @default 10 */
  size?: number;
  /** @default false */
  bold?: boolean;
  /** @default the writer's ink */
  color?: Color;
  /** The paragraph's direction. @default the text's first strong character's */
  direction?: Direction;
}

export interface WriterOptions {
  title: string;
  /** @default A4 */
  pageSize?: [number, number];
  /** Page margin in points, all four sides. @default 50 */
  margin?: number;
  /** Text colour. @default near black */
  ink?: Color;
  creationDate?: Date;
  /** Called on each page the flow opens (page numbers, running heads). */
  onPage?: (writer: PdfWriter, page: PDFPage) => void | Promise<void>;
}

export interface DrawOptions extends TextStyle {
  x: number;
  /** Baseline. */
  y: number;
  /** @default the current page */
  page?: PDFPage;
}

export interface ParaOptions extends TextStyle {
  /** Left indent from the margin. @default 0 */
  indent?: number;
  /** Space after the paragraph. @default 6 */
  gap?: number;
  /** Line height as a multiple of the size. @default 1.35 */
  leading?: number;
}

export interface TableColumn {
  head: string;
  width: number;
  /** Figures read best right-aligned. @default "left" */
  align?: "left" | "right";
}

/** Control characters become spaces or go; bidi controls go (`bidi.ts` decides order). */
export function cleanText(text: string): string {
  return withoutBidiControls(text.replace(/[\r\n\t\f\v\u2028\u2029]+/g, " "))
    .replace(/\p{Cc}/gu, "");
}

/** Words, spaces, and CJK ideographs, kana and their punctuation one by one (a line may break
 * between any two of those). */
const TOKENS =
  /\s+|[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\u3000-\u303f\uff01-\uff60]|[^\s\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\u3000-\u303f\uff01-\uff60]+/gu;

export class PdfWriter {
  /** The current page of the flow. */
  page!: PDFPage;
  /** The flow's position: the top of the next line. */
  y = 0;
  readonly pageSize: [number, number];
  readonly margin: number;
  readonly ink: Color;
  readonly #onPage: WriterOptions["onPage"];
  readonly #fonts = new Map<string, Promise<PDFFont>>();
  /** Advance widths at 1 pt by font and run: shaping a run (fontkit) is the costly part. */
  readonly #widths = new Map<PDFFont, Map<string, number>>();

  private constructor(readonly doc: PDFDocument, o: WriterOptions) {
    this.pageSize = o.pageSize ?? A4;
    this.margin = o.margin ?? 50;
    this.ink = o.ink ?? rgb(0.12, 0.14, 0.18);
    this.#onPage = o.onPage;
  }

  static async create(o: WriterOptions): Promise<PdfWriter> {
    const doc = await PDFDocument.create();
    doc.registerFontkit(fontkit);
    doc.setTitle(cleanText(o.title));
    doc.setProducer("Troupe");
    if (o.creationDate) doc.setCreationDate(o.creationDate);
    return new PdfWriter(doc, o);
  }

  /** The width between the margins. */
  get contentWidth(): number {
    return this.pageSize[0] - 2 * this.margin;
  }

  /** The 1-based number of the last page. */
  get pageCount(): number {
    return this.doc.getPageCount();
  }

  /** Opens a page and puts the flow at its top. */
  async newPage(): Promise<PDFPage> {
    this.page = this.doc.addPage(this.pageSize);
    this.y = this.pageSize[1] - this.margin;
    await this.#onPage?.(this, this.page);
    return this.page;
  }

  /** A page outside the flow (a table of contents filled in at the end, say). */
  addPage(): PDFPage {
    return this.doc.addPage(this.pageSize);
  }

  /** Opens a page unless `height` points still fit above the bottom margin. */
  async ensure(height: number): Promise<void> {
    if (!this.page || this.y - height < this.margin) await this.newPage();
  }

  /** The PDF font of a face, embedded (as a subset) on first use. */
  #font(family: Family, weight: Weight): Promise<PDFFont> {
    return loadFace(family, weight).then((face) => {
      let font = this.#fonts.get(face.file);
      if (!font) {
        // The subset tag ("AAAAAB+") tells readers the font is a subset (PDF 32000 9.6.4).
        const tag = (this.#fonts.size + 1).toString(26).padStart(6, "0").replace(
          /./g,
          (d) => String.fromCharCode(65 + parseInt(d, 26)),
        );
        font = this.doc.embedFont(face.bytes, {
          subset: true,
          customName: `${tag}+${face.font.postscriptName}`,
        });
        this.#fonts.set(face.file, font);
      }
      return font;
    });
  }

  /** The width of a run (marked with its direction or not) in a font. */
  #width(font: PDFFont, run: string, size: number): number {
    let widths = this.#widths.get(font);
    if (!widths) this.#widths.set(font, widths = new Map());
    let w = widths.get(run);
    if (w === undefined) widths.set(run, w = font.widthOfTextAtSize(run, 1));
    return w * size;
  }

  /** The width of one line of `text`. */
  async measure(text: string, { size = 10, bold = false }: TextStyle = {}): Promise<number> {
    let width = 0;
    const weight = bold ? "bold" : "regular";
    for (const run of await fontRuns(cleanText(text), weight)) {
      width += this.#width(await this.#font(run.family, weight), LTR_MARK + run.text, size);
    }
    return width;
  }

  /** Draws one line at a point (no wrapping); returns its width. */
  async draw(text: string, o: DrawOptions): Promise<number> {
    const { size = 10, bold = false, color = this.ink, page = this.page } = o;
    const clean = cleanText(text);
    const weight = bold ? "bold" : "regular";
    const runs = await fontRuns(clean, weight);
    const ordered = visualRuns(
      runs.map((r) => ({ text: r.text, tag: r.family })),
      o.direction ?? baseDirection(clean),
    );
    let x = o.x;
    for (const run of ordered) {
      const font = await this.#font(run.tag, weight);
      const marked = (run.rtl ? RTL_MARK : LTR_MARK) + run.text;
      page.drawText(marked, { x, y: o.y, size, font, color });
      x += this.#width(font, marked, size);
    }
    return x - o.x;
  }

  /** `text` cut to fit `width`, with an ellipsis when cut. */
  async clip(text: string, width: number, style: TextStyle = {}): Promise<string> {
    const clean = cleanText(text);
    if (await this.measure(clean, style) <= width) return clean;
    const chars = [...clean];
    let lo = 0;
    let hi = chars.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (await this.measure(chars.slice(0, mid).join("") + "…", style) <= width) lo = mid;
      else hi = mid - 1;
    }
    return chars.slice(0, lo).join("").trimEnd() + "…";
  }

  /** `text` broken into lines of at most `width` (at spaces, and between CJK characters). */
  async wrap(text: string, width: number, style: TextStyle = {}): Promise<string[]> {
    const tokens = cleanText(text).match(TOKENS) ?? [];
    const widths = new Map<string, number>();
    const widthOf = async (t: string) => {
      let w = widths.get(t);
      if (w === undefined) widths.set(t, w = await this.measure(t, style));
      return w;
    };
    const lines: string[] = [];
    let line = "";
    let lineWidth = 0;
    let space = "";
    for (const token of tokens) {
      if (/^\s/.test(token)) {
        space = " ";
        continue;
      }
      const joint = line ? space : "";
      const w = await widthOf(token);
      const jw = joint ? await widthOf(joint) : 0;
      if (line && lineWidth + jw + w > width) {
        lines.push(line);
        line = "";
        lineWidth = 0;
      }
      if (!line && w > width) {
        // A word wider than the line: cut it where it overflows.
        let rest = token;
        while (await this.measure(rest, style) > width) {
          const chars = [...rest];
          let n = chars.length - 1;
          while (n > 1 && await this.measure(chars.slice(0, n).join(""), style) > width) n--;
          lines.push(chars.slice(0, n).join(""));
          rest = chars.slice(n).join("");
        }
        line = rest;
        lineWidth = await this.measure(rest, style);
      } else if (line) {
        line += joint + token;
        lineWidth += jw + w;
      } else {
        line = token;
        lineWidth = w;
      }
      space = "";
    }
    if (line) lines.push(line);
    return lines;
  }

  /**
   * Writes a wrapped paragraph in the flow (right-aligned when it reads right to left);
   * returns the page it starts on.
   */
  async para(text: string, o: ParaOptions = {}): Promise<number> {
    const { size = 10, indent = 0, gap = 6, leading = 1.35 } = o;
    const direction = o.direction ?? baseDirection(cleanText(text));
    const style = { ...o, size, direction };
    const width = this.contentWidth - indent;
    const lines = await this.wrap(text, width, style);
    await this.ensure(size * leading);
    const start = this.pageCount;
    for (const line of lines) {
      await this.ensure(size * leading);
      const x = direction === "rtl"
        ? this.margin + indent + width - await this.measure(line, style)
        : this.margin + indent;
      await this.draw(line, { ...style, x, y: this.y - size });
      this.y -= size * leading;
    }
    this.y -= gap;
    return start;
  }

  /** One line in the flow, clipped to `width`. */
  async line(
    text: string,
    o: TextStyle & { x?: number; width?: number; gap?: number } = {},
  ): Promise<void> {
    const { size = 10, x = this.margin, width = this.contentWidth, gap = 4 } = o;
    await this.ensure(size + gap);
    await this.draw(await this.clip(text, width, o), { ...o, size, x, y: this.y - size });
    this.y -= size + gap;
  }

  /** A thin horizontal rule across the content width. */
  rule(color: Color = rgb(0.85, 0.87, 0.9)): void {
    this.page.drawLine({
      start: { x: this.margin, y: this.y },
      end: { x: this.pageSize[0] - this.margin, y: this.y },
      thickness: 0.5,
      color,
    });
    this.y -= 6;
  }

  /**
   * A table: a bold header row and a rule, then one clipped line per row and cell; `foot`
   * (totals, say) after a rule, bold.
   */
  async table(
    columns: TableColumn[],
    rows: string[][],
    { size = 8.5, head = rgb(0.42, 0.45, 0.5), foot }: {
      size?: number;
      head?: Color;
      foot?: string[];
    } = {},
  ): Promise<void> {
    const row = async (cells: string[], style: TextStyle) => {
      await this.ensure(size + 7);
      let x = this.margin;
      for (const [i, column] of columns.entries()) {
        const cell = await this.clip(cells[i] ?? "", column.width - 4, { ...style, size });
        const at = column.align === "right"
          ? x + column.width - 4 - await this.measure(cell, { ...style, size })
          : x;
        await this.draw(cell, { ...style, size, x: at, y: this.y - size - 1.5 });
        x += column.width;
      }
      this.y -= size + 6.5;
    };
    await row(columns.map((c) => c.head), { bold: true, color: head });
    this.rule();
    for (const cells of rows) await row(cells, {});
    if (foot) {
      await this.ensure(size + 13);
      this.rule();
      await row(foot, { bold: true });
    }
  }

  async save(): Promise<Uint8Array<ArrayBuffer>> {
    return new Uint8Array(await this.doc.save());
  }
}
