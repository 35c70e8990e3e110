/**
 * The fast text path: a page's text items read straight from its content stream, the way
 * pdf.js's `getTextContent` builds them (its item, space and line-end rules are ported from
 * pdf.js 6.1.200, Apache-2.0, src/core/evaluator.js), without pdf.js's worker messages,
 * streams, font programs or operator lists: much faster on ordinary pages
 * (`bench/courses_scale.ts` measures both).
 *
 * It handles the common cases: Flate content streams, text positioning (`cm`, `q`/`Q`, `Tm`,
 * `Td`, `TD`, `T*`, `TL`, `Tc`, `Tw`, `Tz`, `Ts`), `Tj`/`TJ`/`'`/`"`, Form XObjects, simple
 * fonts with a ToUnicode map or a WinAnsi/MacRoman encoding (with `/Differences`) and
 * Type0 fonts with `Identity-H` and a ToUnicode map. Anything else (Type3 or vertical fonts,
 * a code without Unicode, inline images, right-to-left text, an unknown operator, a font set
 * by a graphics state) throws {@link Unsupported}, and the page is read with pdf.js.
 */
import { ENCODINGS, GLYPH_NAMES, GLYPH_UNICODE, STANDARD_WIDTHS } from "./pdf_fonts_data.ts";
import {
  Lexer,
  type PdfDict,
  PdfFile,
  PdfName,
  PdfOp,
  type PdfPage,
  PdfRef,
  PdfStream,
  type PdfValue,
  Unsupported,
} from "./pdf_objects.ts";

export { PdfFile, Unsupported };

/** A text item as pdf.js gives it (the fields the line builder reads). */
export interface TextItem {
  str: string;
  transform: number[];
  width: number;
  height: number;
  hasEOL: boolean;
}

interface Glyph {
  unicode: string;
  /** Width in glyph units (1/1000 of the font size). */
  width: number;
  code: number;
  isWhitespace: boolean;
  isZeroWidthDiacritic: boolean;
  isInvisibleFormatMark: boolean;
}

interface Font {
  name: string;
  twoByte: boolean;
  glyphs: Map<number, Glyph>;
  unicodeOf(code: number): string | undefined;
  widthOf(code: number): number;
}

const UNICODE_OF_NAME = new Map(GLYPH_NAMES.map((n, i) => [n, GLYPH_UNICODE[i]!]));
const SPECIAL = /^(\s)|(\p{Mn})|(\p{Cf})$/u;
const RTL = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]/;
// pdf.js's normalizeUnicode: compatibility forms (ligatures, spaces, ...) of a few ranges.
const NORMALIZE =
  /([\u00a0\u00b5\u037e\u0eb3\u2000-\u200a\u202f\u2126\ufb00-\ufb04\ufb06\ufb20-\ufb36\ufb38-\ufb3c\ufb3e\ufb40\ufb41\ufb43\ufb44\ufb46-\ufba1\ufba4-\ufba9\ufbae-\ufbb1\ufbd3-\ufbdc\ufbde-\ufbe7\ufbea-\ufbf8\ufbfc\ufbfd\ufc00-\ufc5d\ufc64-\ufcf1\ufcf5-\ufd3d\ufd88\ufdf4\ufdfa\ufdfb\ufe71\ufe77\ufe79\ufe7b\ufe7d]+)|(\ufb05+)/gu;
const normalize = (s: string) =>
  s.replaceAll(NORMALIZE, (_, p1: string | undefined) => p1 ? p1.normalize("NFKC") : "ſt");

/** Argument counts of the content operators (pdf.js's table; -1: variable). */
const OPS: Record<string, number> = {
  w: 1,
  J: 1,
  j: 1,
  M: 1,
  d: 2,
  ri: 1,
  i: 1,
  gs: 1,
  q: 0,
  Q: 0,
  cm: 6,
  m: 2,
  l: 2,
  c: 6,
  v: 4,
  y: 4,
  h: 0,
  re: 4,
  S: 0,
  s: 0,
  f: 0,
  F: 0,
  "f*": 0,
  B: 0,
  "B*": 0,
  b: 0,
  "b*": 0,
  n: 0,
  W: 0,
  "W*": 0,
  BT: 0,
  ET: 0,
  Tc: 1,
  Tw: 1,
  Tz: 1,
  TL: 1,
  Tf: 2,
  Tr: 1,
  Ts: 1,
  Td: 2,
  TD: 2,
  Tm: 6,
  "T*": 0,
  Tj: 1,
  TJ: 1,
  "'": 1,
  '"': 3,
  d0: 2,
  d1: 6,
  CS: 1,
  cs: 1,
  SC: -1,
  SCN: -1,
  sc: -1,
  scn: -1,
  G: 1,
  g: 1,
  RG: 3,
  rg: 3,
  K: 4,
  k: 4,
  sh: 1,
  Do: 1,
  MP: 1,
  DP: 2,
  BMC: 1,
  BDC: 2,
  EMC: 0,
  BX: 0,
  EX: 0,
}; // deno-fmt-ignore

type Matrix = number[];
const IDENTITY: Matrix = [1, 0, 0, 1, 0, 0];

function mul(m1: Matrix, m2: Matrix): Matrix {
  return [
    m1[0]! * m2[0]! + m1[2]! * m2[1]!,
    m1[1]! * m2[0]! + m1[3]! * m2[1]!,
    m1[0]! * m2[2]! + m1[2]! * m2[3]!,
    m1[1]! * m2[2]! + m1[3]! * m2[3]!,
    m1[0]! * m2[4]! + m1[2]! * m2[5]! + m1[4]!,
    m1[1]! * m2[4]! + m1[3]! * m2[5]! + m1[5]!,
  ];
}

class TextState {
  ctm: Matrix = IDENTITY;
  font: Font | null = null;
  fontName: string | null = null;
  fontSize = 0;
  textMatrix: Matrix = IDENTITY.slice();
  textLineMatrix: Matrix = IDENTITY.slice();
  charSpacing = 0;
  wordSpacing = 0;
  leading = 0;
  textHScale = 1;
  textRise = 0;

  clone(): TextState {
    const c = Object.assign(new TextState(), this);
    c.textMatrix = this.textMatrix.slice();
    c.textLineMatrix = this.textLineMatrix.slice();
    return c;
  }
  translateTextMatrix(x: number, y: number) {
    const m = this.textMatrix;
    m[4] = m[0]! * x + m[2]! * y + m[4]!;
    m[5] = m[1]! * x + m[3]! * y + m[5]!;
  }
  translateTextLineMatrix(x: number, y: number) {
    const m = this.textLineMatrix;
    m[4] = m[0]! * x + m[2]! * y + m[4]!;
    m[5] = m[1]! * x + m[3]! * y + m[5]!;
  }
  carriageReturn() {
    this.translateTextLineMatrix(0, -this.leading);
    this.textMatrix = this.textLineMatrix.slice();
  }
}

/** Text of the pages of one file; fonts are read once per file. */
export class FastText {
  readonly #fonts = new Map<PdfValue, Font>();
  constructor(readonly file: PdfFile) {}

  /** Opens a file, or throws {@link Unsupported}. */
  static open(bytes: Uint8Array): FastText {
    return new FastText(new PdfFile(bytes));
  }

  get pageCount(): number {
    return this.file.pages.length;
  }

  /** The text items of page `n` (1-based), as pdf.js's `getTextContent` gives them. */
  items(n: number): TextItem[] {
    const page = this.file.pages[n - 1];
    if (!page) throw new Unsupported("no such page");
    const contents = this.file.get(page.dict.get("Contents"));
    const parts = Array.isArray(contents) ? contents.map((c) => this.file.get(c)) : [contents];
    const chunks: Uint8Array[] = [];
    for (const part of parts) {
      if (part === null || part === undefined) continue;
      if (!(part instanceof PdfStream)) throw new Unsupported("contents");
      chunks.push(this.file.decode(part));
    }
    const data = chunks.length === 1 ? chunks[0]! : join(chunks);
    const out: TextItem[] = [];
    this.#run(data, page.resources, new TextState(), page, out, new Set(), 0);
    return out;
  }

  #font(resources: PdfDict, name: string): Font {
    const fonts = this.file.optDict(resources.get("Font"));
    const raw = fonts?.get(name);
    if (raw === undefined) throw new Unsupported(`font ${name} not found`);
    const key = raw instanceof PdfRef ? raw.num : raw;
    let font = this.#fonts.get(key);
    if (!font) {
      font = loadFont(this.file, this.file.dict(raw));
      this.#fonts.set(key, font);
    }
    return font;
  }

  /** One content stream (a page's, or a form's within it): pdf.js's getTextContent. */
  #run(
    data: Uint8Array,
    resources: PdfDict,
    initial: TextState,
    page: PdfPage,
    out: TextItem[],
    forms: Set<PdfStream>,
    depth: number,
  ): void {
    const file = this.file;
    const viewBox = page.view;
    const stack: TextState[] = [];
    let textState = initial;
    let current: TextState | null = null;
    // The item being built.
    let initialized = false;
    let str: string[] = [];
    let totalWidth = 0, totalHeight = 0, width = 0, height = 0;
    let prevTransform: Matrix | null = null;
    let prevTextRise = 0;
    let textAdvanceScale = 0;
    let spaceInFlowMin = 0, spaceInFlowMax = 0;
    let trackingSpaceMin = Infinity, negativeSpaceMax = -Infinity, notASpace = -Infinity;
    let transform: Matrix | null = null;
    let hasEOL = false;
    const twoLastChars = [" ", " "];
    let twoLastCharsPos = 0;

    const saveLastChar = (char: string) => {
      const nextPos = (twoLastCharsPos + 1) % 2;
      const ret = twoLastChars[twoLastCharsPos] !== " " && twoLastChars[nextPos] === " ";
      twoLastChars[twoLastCharsPos] = char;
      twoLastCharsPos = nextPos;
      return ret;
    };
    const shouldAddWhitespace = () =>
      twoLastChars[twoLastCharsPos] !== " " && twoLastChars[(twoLastCharsPos + 1) % 2] === " ";
    const resetLastChars = () => {
      twoLastChars[0] = twoLastChars[1] = " ";
      twoLastCharsPos = 0;
    };
    const pushWhitespace = (w: number, h: number, t: Matrix | null = prevTransform) => {
      out.push({ str: " ", transform: t!, width: w, height: h, hasEOL: false });
    };
    // ctm × textMatrix × [fontSize·hScale 0 0 fontSize 0 rise], term for term as pdf.js's
    // two Util.transform calls compute it (the same rounding), with one array.
    const getCurrentTextTransform = (): Matrix => {
      const a = textState.fontSize * textState.textHScale;
      const d = textState.fontSize;
      const rise = textState.textRise;
      const t = textState.textMatrix;
      const t0 = t[0]!, t1 = t[1]!, t2 = t[2]!, t3 = t[3]!, t4 = t[4]!, t5 = t[5]!;
      const i0 = t0 * a + t2 * 0;
      const i1 = t1 * a + t3 * 0;
      const i2 = t0 * 0 + t2 * d;
      const i3 = t1 * 0 + t3 * d;
      const i4 = t0 * 0 + t2 * rise + t4;
      const i5 = t1 * 0 + t3 * rise + t5;
      const c = textState.ctm;
      const c0 = c[0]!, c1 = c[1]!, c2 = c[2]!, c3 = c[3]!, c4 = c[4]!, c5 = c[5]!;
      return [
        c0 * i0 + c2 * i1,
        c1 * i0 + c3 * i1,
        c0 * i2 + c2 * i3,
        c1 * i2 + c3 * i3,
        c0 * i4 + c2 * i5 + c4,
        c1 * i4 + c3 * i5 + c5,
      ];
    };
    const ensureTextContentItem = () => {
      if (initialized) return;
      const trm = transform = getCurrentTextTransform();
      width = totalWidth = 0;
      height = totalHeight = Math.hypot(trm[2]!, trm[3]!);
      const tlm = textState.textLineMatrix;
      const ctm = textState.ctm;
      textAdvanceScale = Math.hypot(ctm[0]!, ctm[1]!) * Math.hypot(tlm[0]!, tlm[1]!);
      const { fontSize } = textState;
      trackingSpaceMin = fontSize * 0.102;
      notASpace = fontSize * 0.03;
      negativeSpaceMax = fontSize * -0.2;
      spaceInFlowMin = fontSize * 0.102;
      spaceInFlowMax = fontSize * 0.6;
      hasEOL = false;
      initialized = true;
    };
    const updateAdvanceScale = () => {
      if (!initialized) return;
      const tlm = textState.textLineMatrix;
      const ctm = textState.ctm;
      const scale = Math.hypot(ctm[0]!, ctm[1]!) * Math.hypot(tlm[0]!, tlm[1]!);
      if (scale === textAdvanceScale) return;
      totalWidth += width * textAdvanceScale;
      width = 0;
      textAdvanceScale = scale;
    };
    const flushTextContentItem = () => {
      if (!initialized) return;
      totalWidth += width * textAdvanceScale;
      const text = normalize(str.join(""));
      if (RTL.test(text)) throw new Unsupported("right-to-left text");
      out.push({
        str: text,
        transform: transform!,
        width: Math.abs(totalWidth),
        height: Math.abs(totalHeight),
        hasEOL,
      });
      initialized = false;
      str = [];
    };
    const appendEOL = () => {
      resetLastChars();
      if (initialized) {
        hasEOL = true;
        flushTextContentItem();
      } else {
        out.push({
          str: "",
          transform: getCurrentTextTransform(),
          width: 0,
          height: 0,
          hasEOL: true,
        });
      }
    };
    const addFakeSpaces = (w: number, transf: Matrix | null, orientation: number) => {
      if (orientation * spaceInFlowMin <= w && w <= orientation * spaceInFlowMax) {
        if (initialized) {
          resetLastChars();
          str.push(" ");
        }
        return false;
      }
      flushTextContentItem();
      resetLastChars();
      pushWhitespace(Math.abs(w), 0, transf || getCurrentTextTransform());
      return true;
    };
    const compareWithLastPosition = (glyphWidth: number) => {
      const currentTransform = getCurrentTextTransform();
      let posX = currentTransform[4]!;
      let posY = currentTransform[5]!;
      if (
        posX + glyphWidth < viewBox[0] || posX > viewBox[2] || posY < viewBox[1] ||
        posY > viewBox[3]
      ) return false;
      if (!textState.font || !prevTransform) return true;
      let lastPosX = prevTransform[4]!;
      let lastPosY = prevTransform[5]!;
      if (lastPosX === posX && lastPosY === posY) return true;
      let rotate = -1;
      const [c0, c1, c2, c3] = currentTransform as [number, number, number, number];
      if (c0 && c1 === 0 && c2 === 0) rotate = c0 > 0 ? 0 : 180;
      else if (c1 && c0 === 0 && c3 === 0) rotate = c1 > 0 ? 90 : 270;
      switch (rotate) {
        case 0:
          break;
        case 90:
          [posX, posY] = [posY, posX];
          [lastPosX, lastPosY] = [lastPosY, lastPosX];
          break;
        case 180:
          [posX, posY, lastPosX, lastPosY] = [-posX, -posY, -lastPosX, -lastPosY];
          break;
        case 270:
          [posX, posY] = [-posY, -posX];
          [lastPosX, lastPosY] = [-lastPosY, -lastPosX];
          break;
        default: {
          const inv = (x: number, y: number, m: Matrix) => {
            const scale = Math.hypot(m[0]!, m[1]!);
            return [(m[0]! * x + m[1]! * y) / scale, (m[2]! * x + m[3]! * y) / scale];
          };
          [posX, posY] = inv(posX, posY, currentTransform) as [number, number];
          [lastPosX, lastPosY] = inv(lastPosX, lastPosY, prevTransform) as [number, number];
        }
      }
      const advanceX = (posX - lastPosX) / textAdvanceScale;
      const advanceY = posY - lastPosY;
      const orientation = Math.sign(width || totalWidth);
      if (advanceX < orientation * negativeSpaceMax) {
        if (Math.abs(advanceY) > 0.5 * height) {
          appendEOL();
          return true;
        }
        resetLastChars();
        flushTextContentItem();
        return true;
      }
      const riseDelta = textState.textRise - prevTextRise;
      const advanceYCorrected = riseDelta === 0
        ? advanceY
        : advanceY - (currentTransform[3]! / textState.fontSize) * riseDelta;
      if (Math.abs(advanceYCorrected) > height) {
        appendEOL();
        return true;
      }
      if (advanceX <= orientation * notASpace) resetLastChars();
      if (advanceX <= orientation * trackingSpaceMin) {
        if (shouldAddWhitespace()) {
          resetLastChars();
          flushTextContentItem();
          pushWhitespace(Math.abs(advanceX), 0);
        } else {
          width += advanceX;
        }
      } else if (!addFakeSpaces(advanceX, prevTransform, orientation)) {
        if (str.length === 0) {
          resetLastChars();
          pushWhitespace(Math.abs(advanceX), 0);
        } else {
          width += advanceX;
        }
      }
      if (Math.abs(advanceY) > height * 0.25) flushTextContentItem();
      return true;
    };
    const buildTextContentItem = (chars: string, extraSpacing: number) => {
      const cur = current!;
      if (
        cur !== textState &&
        (cur.fontSize !== textState.fontSize ||
          (cur.fontName !== textState.fontName && sameFontName(cur, textState) === false))
      ) {
        flushTextContentItem();
        current = textState.clone();
      }
      const font = textState.font!;
      const baseCharSpacing = textState.charSpacing;
      if (!chars) {
        const charSpacing = baseCharSpacing + extraSpacing;
        if (charSpacing) textState.translateTextMatrix(charSpacing * textState.textHScale, 0);
        return;
      }
      const glyphs = glyphsOf(font, chars);
      const scale = 0.001 * textState.fontSize;
      for (let i = 0, ii = glyphs.length; i < ii; i++) {
        const glyph = glyphs[i]!;
        if (glyph.isInvisibleFormatMark) continue;
        let charSpacing = baseCharSpacing + (i + 1 === ii ? extraSpacing : 0);
        let scaledDim = glyph.width * scale;
        if (glyph.code === 0x20) charSpacing += textState.wordSpacing;
        if (glyph.isWhitespace) {
          charSpacing += scaledDim;
          textState.translateTextMatrix(charSpacing * textState.textHScale, 0);
          saveLastChar(" ");
          continue;
        }
        if (!glyph.isZeroWidthDiacritic && !compareWithLastPosition(scaledDim)) {
          textState.translateTextMatrix(scaledDim * textState.textHScale, 0);
          continue;
        }
        ensureTextContentItem();
        if (glyph.isZeroWidthDiacritic) scaledDim = 0;
        scaledDim *= textState.textHScale;
        textState.translateTextMatrix(scaledDim, 0);
        width += scaledDim;
        if (scaledDim) {
          prevTransform = getCurrentTextTransform();
          prevTextRise = textState.textRise;
        }
        if (saveLastChar(glyph.unicode)) str.push(" ");
        str.push(glyph.unicode);
        if (charSpacing) textState.translateTextMatrix(charSpacing * textState.textHScale, 0);
      }
    };

    const lx = new Lexer(data);
    const args: PdfValue[] = [];
    const num = (v: PdfValue | undefined) => {
      if (typeof v !== "number") throw new Unsupported("expected a number");
      return v;
    };
    const text = (v: PdfValue | undefined) => {
      if (typeof v !== "string") throw new Unsupported("expected a string");
      return v;
    };
    const needFont = () => {
      if (!textState.font) throw new Unsupported("text without a font");
    };
    let xobjects: PdfDict | undefined;
    while (true) {
      const t = lx.next(false);
      if (typeof t === "symbol") {
        if (t.description === "end") break;
        throw new Unsupported("stray bracket");
      }
      if (!(t instanceof PdfOp)) {
        args.push(t);
        if (args.length > 33) throw new Unsupported("too many arguments");
        continue;
      }
      const op = t.op;
      const n = OPS[op];
      if (n === undefined) throw new Unsupported(`operator ${op}`);
      if (n >= 0 && args.length !== n) throw new Unsupported(`${op} with ${args.length} args`);
      current ??= textState.clone();
      switch (op) {
        case "q":
          stack.push(textState);
          textState = textState.clone();
          break;
        case "Q":
          textState = stack.pop() ?? textState;
          break;
        case "cm":
          textState.ctm = mul(textState.ctm, args.map(num));
          break;
        case "Tf": {
          const name = args[0];
          const size = num(args[1]);
          if (!(name instanceof PdfName)) throw new Unsupported("Tf");
          if (textState.font && name.name === textState.fontName && size === textState.fontSize) {
            break;
          }
          textState.fontName = name.name;
          textState.fontSize = size;
          textState.font = this.#font(resources, name.name);
          break;
        }
        case "Ts":
          textState.textRise = num(args[0]);
          break;
        case "Tz":
          textState.textHScale = num(args[0]) / 100;
          break;
        case "TL":
          textState.leading = num(args[0]);
          break;
        case "Td":
          textState.translateTextLineMatrix(num(args[0]), num(args[1]));
          textState.textMatrix = textState.textLineMatrix.slice();
          break;
        case "TD":
          textState.leading = -num(args[1]);
          textState.translateTextLineMatrix(num(args[0]), num(args[1]));
          textState.textMatrix = textState.textLineMatrix.slice();
          break;
        case "T*":
          textState.carriageReturn();
          break;
        case "Tm": {
          const m = args.map(num);
          textState.textMatrix = m.slice();
          textState.textLineMatrix = m.slice();
          updateAdvanceScale();
          break;
        }
        case "Tc":
          textState.charSpacing = num(args[0]);
          break;
        case "Tw":
          textState.wordSpacing = num(args[0]);
          break;
        case "BT":
          textState.textMatrix = IDENTITY.slice();
          textState.textLineMatrix = IDENTITY.slice();
          break;
        case "TJ": {
          needFont();
          const elements = args[0];
          if (!Array.isArray(elements)) throw new Unsupported("TJ");
          const spaceFactor = -textState.fontSize / 1000;
          let buffer = "";
          for (const item of elements) {
            if (typeof item === "string") buffer += item;
            else if (typeof item === "number") {
              if (item !== 0) {
                buildTextContentItem(buffer, item * spaceFactor);
                buffer = "";
              }
            } else throw new Unsupported("TJ element");
          }
          if (buffer.length > 0) buildTextContentItem(buffer, 0);
          break;
        }
        case "Tj":
          needFont();
          buildTextContentItem(text(args[0]), 0);
          break;
        case "'":
          needFont();
          textState.carriageReturn();
          buildTextContentItem(text(args[0]), 0);
          break;
        case '"':
          needFont();
          textState.wordSpacing = num(args[0]);
          textState.charSpacing = num(args[1]);
          textState.carriageReturn();
          buildTextContentItem(text(args[2]), 0);
          break;
        case "Do": {
          flushTextContentItem();
          const name = args[0];
          if (!(name instanceof PdfName)) throw new Unsupported("Do");
          xobjects ??= file.optDict(resources.get("XObject"));
          const xobj = file.get(xobjects?.get(name.name));
          if (!(xobj instanceof PdfStream)) throw new Unsupported("XObject");
          const subtype = file.get(xobj.dict.get("Subtype"));
          if (subtype !== PdfName.of("Form")) break;
          if (forms.has(xobj) || depth > 20) throw new Unsupported("form loop");
          const state = textState.clone();
          const matrix = file.get(xobj.dict.get("Matrix"));
          if (Array.isArray(matrix)) {
            const m = matrix.map((v) => file.get(v));
            if (m.length === 6 && m.every((v) => typeof v === "number")) {
              state.ctm = mul(state.ctm, m as number[]);
            }
          }
          const local = file.optDict(xobj.dict.get("Resources"));
          forms.add(xobj);
          this.#run(file.decode(xobj), local ?? resources, state, page, out, forms, depth + 1);
          forms.delete(xobj);
          break;
        }
        case "gs": {
          const name = args[0];
          const states = file.optDict(resources.get("ExtGState"));
          const gs = name instanceof PdfName ? file.optDict(states?.get(name.name)) : undefined;
          if (!gs) throw new Unsupported("gs");
          if (gs.has("Font")) throw new Unsupported("font set by gs");
          break;
        }
        case "BMC":
        case "BDC":
        case "EMC":
          flushTextContentItem();
          break;
        case "d0":
        case "d1":
          throw new Unsupported("Type3 glyph operators");
      }
      args.length = 0;
    }
    flushTextContentItem();
  }
}

/** Whether two states' fonts have one name (pdf.js fails on a state without a font). */
function sameFontName(a: TextState, b: TextState): boolean {
  if (!a.font || !b.font) throw new Unsupported("font change before any font");
  return a.font.name === b.font.name;
}

function join(chunks: Uint8Array[]): Uint8Array {
  // pdf.js reads the parts of a page's contents as one stream; a newline between them keeps
  // a token from running into the next part's first one.
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length + 1, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
    out[at++] = 10;
  }
  return out;
}

function glyphsOf(font: Font, chars: string): Glyph[] {
  const glyphs: Glyph[] = [];
  const step = font.twoByte ? 2 : 1;
  if (font.twoByte && chars.length % 2 !== 0) throw new Unsupported("odd two-byte string");
  for (let i = 0; i < chars.length; i += step) {
    const code = font.twoByte
      ? (chars.charCodeAt(i) << 8) | chars.charCodeAt(i + 1)
      : chars.charCodeAt(i);
    let glyph = font.glyphs.get(code);
    if (!glyph) {
      const unicode = font.unicodeOf(code);
      if (!unicode) throw new Unsupported(`code ${code} has no Unicode`);
      const m = unicode.match(SPECIAL);
      glyph = {
        unicode,
        width: font.widthOf(code),
        code,
        isWhitespace: !!m?.[1],
        isZeroWidthDiacritic: !!m?.[2],
        isInvisibleFormatMark: !!m?.[3],
      };
      font.glyphs.set(code, glyph);
    }
    glyphs.push(glyph);
  }
  return glyphs;
}

/**
 * Unicode of code `code` named `name`, as pdf.js's _simpleFontToUnicode reads it, for the
 * names this path knows: the Latin names, uniXXXX and uXXXX[XX].
 */
function unicodeOfName(
  name: string,
  code: number,
  base: (string | undefined)[],
): string | undefined {
  const u = UNICODE_OF_NAME.get(name);
  if (u !== undefined) return String.fromCharCode(u);
  let hex: string | undefined;
  if (name.length === 7 && name.startsWith("uni")) hex = name.slice(3);
  else if (name[0] === "u" && name.length >= 5 && name.length <= 7) hex = name.slice(1);
  if (!hex || !/^[0-9A-F]+$/.test(hex)) return undefined;
  const value = parseInt(hex, 16);
  if (!(value > 0 && value <= 0x10ffff)) return undefined;
  if (value === code && base[code]) {
    const b = UNICODE_OF_NAME.get(base[code]!);
    return b === undefined ? undefined : String.fromCharCode(b);
  }
  return String.fromCodePoint(value);
}

function loadFont(file: PdfFile, dict: PdfDict): Font {
  const subtype = file.get(dict.get("Subtype"));
  const baseFont = file.get(dict.get("BaseFont"));
  const name = baseFont instanceof PdfName ? baseFont.name : "";
  const toUnicode = readToUnicode(file, dict.get("ToUnicode"));
  if (subtype === PdfName.of("Type0")) {
    if (file.get(dict.get("Encoding")) !== PdfName.of("Identity-H")) {
      throw new Unsupported("Type0 encoding");
    }
    if (!toUnicode) throw new Unsupported("Type0 without ToUnicode");
    const kids = file.get(dict.get("DescendantFonts"));
    const cid = file.dict(Array.isArray(kids) ? kids[0] : undefined);
    const cidType = file.get(cid.get("Subtype"));
    if (cidType !== PdfName.of("CIDFontType2") && cidType !== PdfName.of("CIDFontType0")) {
      throw new Unsupported("CID font type");
    }
    const dw = file.get(cid.get("DW"));
    const defaultWidth = typeof dw === "number" ? Math.ceil(dw) : 1000;
    const widths = new Map<number, number>();
    const w = file.get(cid.get("W"));
    if (Array.isArray(w)) {
      for (let i = 0; i < w.length; i++) {
        let start = file.get(w[i++]);
        if (!Number.isInteger(start)) break;
        const code = file.get(w[i]);
        if (Array.isArray(code)) {
          for (const c of code) {
            const width = file.get(c);
            if (typeof width === "number") widths.set(start as number, width);
            start = (start as number) + 1;
          }
        } else if (Number.isInteger(code)) {
          const width = file.get(w[++i]);
          if (typeof width !== "number") continue;
          for (let j = start as number; j <= (code as number); j++) widths.set(j, width);
        } else break;
      }
    }
    return {
      name,
      twoByte: true,
      glyphs: new Map(),
      unicodeOf: (code) => toUnicode.get(code),
      widthOf: (code) => widths.get(code) ?? defaultWidth,
    };
  }
  if (subtype !== PdfName.of("Type1") && subtype !== PdfName.of("TrueType")) {
    throw new Unsupported(`font type ${subtype instanceof PdfName ? subtype.name : "?"}`);
  }
  // The encoding: a base encoding pdf.js applies as is, plus differences.
  const enc = file.get(dict.get("Encoding"));
  let baseName: string | undefined;
  const differences = new Map<number, string>();
  if (enc instanceof PdfName) baseName = enc.name;
  else if (enc instanceof Map) {
    const base = file.get(enc.get("BaseEncoding"));
    if (base instanceof PdfName) baseName = base.name;
    const diffs = file.get(enc.get("Differences"));
    if (Array.isArray(diffs)) {
      let code = 0;
      for (const d of diffs) {
        const v = file.get(d);
        if (typeof v === "number") code = v;
        else if (v instanceof PdfName) differences.set(code++, v.name);
        else throw new Unsupported("Differences");
      }
    }
  } else if (enc !== undefined) throw new Unsupported("Encoding");
  if (baseName !== "WinAnsiEncoding" && baseName !== "MacRomanEncoding") baseName = undefined;
  const symbolic = /Symbol|Dingbats|Wingdings/i.test(name) || name.charCodeAt(0) >= 0xb7;
  const descriptor = file.optDict(dict.get("FontDescriptor"));
  const embedded = !!descriptor &&
    (descriptor.has("FontFile") || descriptor.has("FontFile2") || descriptor.has("FontFile3"));
  if (symbolic) throw new Unsupported("symbolic font");
  const encoding = baseName ? ENCODINGS[baseName]! : undefined;
  const glyphName = (code: number) => {
    const d = differences.get(code);
    return d !== undefined && d !== ".notdef" ? d : encoding?.[code];
  };
  let unicodeOf: (code: number) => string | undefined;
  if (toUnicode) {
    unicodeOf = (code) => toUnicode.get(code);
  } else if (baseName) {
    const base = ENCODINGS[baseName]!;
    unicodeOf = (code) => {
      const n = glyphName(code);
      return n ? unicodeOfName(n, code, base) : undefined;
    };
  } else if (subtype === PdfName.of("Type1") && differences.size > 0) {
    // No base encoding (TeX's fonts): pdf.js reads the differences' names, and the font
    // program's own encoding for the other codes, which this path does not read.
    unicodeOf = (code) => {
      const n = differences.get(code);
      return n && n !== ".notdef" ? unicodeOfName(n, code, []) : undefined;
    };
  } else {
    throw new Unsupported("simple font without a base encoding");
  }
  // Widths: /Widths (with MissingWidth), else the standard 14 metrics by glyph name.
  const widthList = file.get(dict.get("Widths"));
  const first = file.get(dict.get("FirstChar"));
  const widths = new Map<number, number>();
  let defaultWidth = 0;
  if (Array.isArray(widthList)) {
    let j = typeof first === "number" ? first : 0;
    for (const w of widthList) {
      const v = file.get(w);
      if (typeof v === "number") widths.set(j, v);
      j++;
    }
    const missing = file.get(descriptor?.get("MissingWidth"));
    defaultWidth = descriptor && typeof missing === "number" ? missing : 0;
  } else {
    const metrics = STANDARD_WIDTHS[name];
    if (metrics === undefined || embedded) throw new Unsupported("no widths");
    if (typeof metrics === "number") defaultWidth = metrics;
    else {
      const byName = new Map<string, number>();
      metrics.split(",").forEach((w, i) => {
        if (w) byName.set(GLYPH_NAMES[i]!, Number(w));
      });
      for (let code = 0; code < 256; code++) {
        const d = differences.get(code);
        const fromDiff = d !== undefined ? byName.get(d) : undefined;
        const w = fromDiff || byName.get(encoding?.[code] ?? "");
        if (w) widths.set(code, w);
      }
    }
  }
  return {
    name,
    twoByte: false,
    glyphs: new Map(),
    unicodeOf,
    widthOf: (code) => widths.get(code) ?? defaultWidth,
  };
}

/** A ToUnicode CMap stream: code → text (pdf.js's readToUnicode); null when absent. */
function readToUnicode(file: PdfFile, ref: PdfValue | undefined): Map<number, string> | null {
  const v = file.get(ref);
  if (v === undefined || v === null) return null;
  if (!(v instanceof PdfStream)) throw new Unsupported("ToUnicode");
  const lx = new Lexer(file.decode(v));
  const bytes = new Map<number, string>();
  const code = (s: PdfValue) => {
    if (typeof s !== "string") throw new Unsupported("CMap code");
    let c = 0;
    for (let i = 0; i < s.length; i++) c = c * 256 + s.charCodeAt(i);
    return c;
  };
  while (true) {
    const t = lx.next(false);
    if (typeof t === "symbol") break;
    if (!(t instanceof PdfOp)) continue;
    if (t.op === "usecmap" || t.op === "begincidrange" || t.op === "begincidchar") {
      throw new Unsupported(`CMap ${t.op}`);
    }
    if (t.op === "beginbfchar") {
      while (true) {
        const src = lx.next(false);
        if (src instanceof PdfOp && src.op === "endbfchar") break;
        const dst = lx.value(false);
        if (typeof dst !== "string") throw new Unsupported("bfchar");
        bytes.set(code(src as PdfValue), dst);
      }
    } else if (t.op === "beginbfrange") {
      while (true) {
        const lo = lx.next(false);
        if (lo instanceof PdfOp && lo.op === "endbfrange") break;
        let low = code(lo as PdfValue);
        const high = code(lx.value(false));
        const dst = lx.value(false);
        if (high - low > 0xffff) throw new Unsupported("bfrange");
        if (Array.isArray(dst)) {
          for (const d of dst) {
            if (low > high) break;
            if (typeof d !== "string") throw new Unsupported("bfrange");
            bytes.set(low++, d);
          }
        } else if (typeof dst === "string") {
          let s = dst;
          const last = s.length - 1;
          while (low <= high) {
            bytes.set(low++, s);
            const next = s.charCodeAt(last) + 1;
            if (next > 0xff) {
              s = s.substring(0, last - 1) + String.fromCharCode(s.charCodeAt(last - 1) + 1) +
                "\x00";
              continue;
            }
            s = s.substring(0, last) + String.fromCharCode(next);
          }
        } else throw new Unsupported("bfrange");
      }
    }
  }
  const map = new Map<number, string>();
  for (const [c, token0] of bytes) {
    let token = token0;
    if (token.length % 2 !== 0) token = "\u0000" + token;
    const units: number[] = [];
    for (let k = 0; k < token.length; k += 2) {
      const w1 = (token.charCodeAt(k) << 8) | token.charCodeAt(k + 1);
      if ((w1 & 0xf800) !== 0xd800) {
        units.push(w1);
        continue;
      }
      k += 2;
      const w2 = (token.charCodeAt(k) << 8) | token.charCodeAt(k + 1);
      units.push(((w1 & 0x3ff) << 10) + (w2 & 0x3ff) + 0x10000);
    }
    map.set(c, String.fromCodePoint(...units));
  }
  return map;
}
