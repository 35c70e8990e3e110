/**
 * A fast CSV reader for the common case, with csv-parse as its oracle: it accepts only
 * well-formed input (RFC 4180 quoting: a quote opens a field or doubles inside a quoted one)
 * and gives exactly csv-parse's records for it under the options `parse.ts` uses. Anything
 * else (a quote inside an unquoted field, text after a closing quote, an unclosed quote,
 * invalid UTF-8) returns `null`, and the caller hands the chunk to csv-parse, which knows
 * every rule. `fast_csv_test.ts` checks the agreement on generated and nasty input.
 *
 * Lines without a quote are cut at their delimiters by the native `indexOf` ({@link fields}),
 * not by a byte-by-byte state machine in JavaScript.
 *
 * A chunk is decoded a piece at a time (~32 KB, cut after a line feed), not as one string: a
 * 1 MB chunk as one string is 1-2 MB, which V8 puts in pages of its own, fresh memory to fault
 * in each time. A record that runs past a piece (a quoted field holding a line feed) is read
 * again with the next piece joined to its start.
 */

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Bytes decoded at a time (then up to the next line feed). */
export const PIECE_BYTES = 32 * 1024;

/**
 * Records of a UTF-8 chunk (BOM already stripped), or `null` when csv-parse must decide.
 * `delimiter` is a single character, `quote` one too or `""` for none.
 */
export function fastCsvRecords(
  body: Uint8Array,
  delimiter: string,
  quote: string,
  pieceBytes = PIECE_BYTES,
): string[][] | null {
  const reader = FastCsvReader.open(body, delimiter, quote, pieceBytes);
  return reader && reader.next(Infinity);
}

/**
 * `text.slice(from, end).split(delimiter)` for a line without quotes, a field at a time with
 * the native `indexOf`: no line string and no split cache lookup, which cost more than the
 * loop on lines of short fields.
 */
function fields(text: string, from: number, end: number, delimiter: string): string[] {
  const out: string[] = [];
  for (let at = from;;) {
    let next = text.indexOf(delimiter, at);
    if (next < 0 || next > end) next = end;
    out.push(text.slice(at, next));
    if (next === end) return out;
    at = next + 1;
  }
}

/**
 * The records of one chunk's text, a batch at a time, so that a caller can finish with a
 * batch before the next is made. {@link FastCsvReader.next} gives `null` as soon as it meets
 * input that only csv-parse may judge; records given before then stay valid, but the chunk
 * as a whole is csv-parse's.
 */
export class FastCsvReader {
  /** The decoded text in hand: what is left of the pieces read so far. */
  #text = "";
  #pos = 0;
  /** Where the next piece starts in the body. */
  #at = 0;
  readonly #q: number;
  readonly #d: number;

  private constructor(
    readonly body: Uint8Array,
    readonly delimiter: string,
    readonly quote: string,
    readonly pieceBytes: number,
  ) {
    // -1 is no character: without a quote, quotes are text.
    this.#q = quote === "" ? -1 : quote.charCodeAt(0);
    this.#d = delimiter.charCodeAt(0);
  }

  /** A reader of a UTF-8 chunk (BOM stripped), or `null` when csv-parse must read it. */
  static open(
    body: Uint8Array,
    delimiter: string,
    quote: string,
    pieceBytes = PIECE_BYTES,
  ): FastCsvReader | null {
    if (delimiter.length !== 1 || quote.length > 1 || delimiter === quote) return null;
    if (delimiter === "\n" || delimiter === "\r" || quote === "\n" || quote === "\r") return null;
    const reader = new FastCsvReader(body, delimiter, quote, Math.max(1, pieceBytes));
    return reader.#more() ? reader : null;
  }

  /** Back to the first record. */
  rewind(): void {
    this.#text = "";
    this.#pos = 0;
    this.#at = 0;
    this.#more();
  }

  /**
   * Joins the next piece to what is left of the text (from `#pos`); false at the end of the
   * body or when the piece holds invalid bytes (or a real U+FFFD: csv-parse decides).
   */
  #more(): boolean {
    const body = this.body;
    if (this.#at >= body.length) return false;
    const nl = body.indexOf(10, Math.min(body.length, this.#at + this.pieceBytes) - 1);
    const end = nl < 0 ? body.length : nl + 1;
    const piece = decoder.decode(body.subarray(this.#at, end));
    if (piece.includes("\uFFFD")) return false;
    this.#at = end;
    this.#text = this.#pos < this.#text.length ? this.#text.slice(this.#pos) + piece : piece;
    this.#pos = 0;
    return true;
  }

  /** Up to `max` more records (`[]` at the end), or `null`: csv-parse must decide. */
  next(max: number): string[][] | null {
    const { delimiter, quote } = this;
    const records: string[][] = [];
    const q = this.#q;
    const d = this.#d;
    let text = this.#text;
    let n = text.length;
    let pos = this.#pos;
    // The text ends with a line feed unless it reaches the body's end: a record that runs to
    // the end of the text while there is more body is read again with the next piece.
    let quoteAt = -1; // the next quote at or after `pos` in `text` (n when none)
    const more = (): boolean => {
      this.#pos = pos;
      if (!this.#more()) return false;
      text = this.#text;
      n = text.length;
      pos = 0;
      quoteAt = -1;
      return true;
    };
    while (records.length < max) {
      if (pos >= n) {
        if (this.#at >= this.body.length) break;
        if (!more()) return null;
        continue;
      }
      let nl = text.indexOf("\n", pos);
      if (nl < 0) {
        if (this.#at < this.body.length) {
          if (!more()) return null;
          continue;
        }
        nl = n;
      }
      let end = nl;
      if (end > pos && text.charCodeAt(end - 1) === 13) end--;
      // The next quote is looked for once per quote, not once per line.
      if (quoteAt < pos) {
        quoteAt = q < 0 ? -1 : text.indexOf(quote, pos);
        if (quoteAt < 0) quoteAt = n;
      }
      if (quoteAt >= end) {
        // A line that starts with a printable ASCII character is not blank (no trim; trim
        // also takes non-ASCII spaces).
        const first = text.charCodeAt(pos);
        if (
          (end === pos || first <= 32 || first >= 127) && text.slice(pos, end).trim().length === 0
        ) {
          // csv-parse's skip_empty_lines drops blank lines; a whitespace-only line that is
          // not empty is left to csv-parse's rules.
          if (end !== pos) return null;
        } else {
          records.push(fields(text, pos, end, delimiter));
        }
        pos = nl + 1;
        continue;
      }
      // A record with quotes (it may span lines): a small state machine from `pos`. Where it
      // would need the text past its end and there is more body, it starts again with more.
      const record: string[] = [];
      const partial = this.#at < this.body.length;
      let i = pos;
      let again = false;
      for (;;) {
        if (i < n && text.charCodeAt(i) === q) {
          // Quoted field.
          let value = "";
          let from = i + 1;
          for (;;) {
            const close = text.indexOf(quote, from);
            if (close < 0 || (close + 1 === n && partial)) break; // unclosed, or undecided
            if (close + 1 < n && text.charCodeAt(close + 1) === q) {
              value += text.slice(from, close + 1);
              from = close + 2;
              continue;
            }
            value += text.slice(from, close);
            i = close + 1;
            from = -1;
            break;
          }
          if (from !== -1) {
            if (!partial) return null; // unclosed quote
            again = true;
            break;
          }
          record.push(value);
        } else {
          // Unquoted field: up to the delimiter or the end of the record; no quote inside.
          let j = i;
          while (j < n) {
            const c = text.charCodeAt(j);
            if (c === q) return null;
            if (c === 10 || c === d) break;
            j++;
          }
          let valueEnd = j;
          if (
            j < n && text.charCodeAt(j) === 10 && valueEnd > i && text.charCodeAt(j - 1) === 13
          ) {
            valueEnd--;
          }
          record.push(text.slice(i, valueEnd));
          i = j;
        }
        // After a field: a delimiter, the end of the record, or (after a quote) anything
        // else is csv-parse's business.
        if (i >= n) {
          if (partial) {
            again = true;
            break;
          }
          pos = n;
          break;
        }
        const c = text.charCodeAt(i);
        if (c === d) {
          i++;
          continue;
        }
        if (c === 10) {
          pos = i + 1;
          break;
        }
        if (c === 13 && i + 1 < n && text.charCodeAt(i + 1) === 10) {
          pos = i + 2;
          break;
        }
        return null;
      }
      if (again) {
        if (!more()) return null;
        continue;
      }
      records.push(record);
    }
    this.#text = text;
    this.#pos = pos;
    return records;
  }
}
