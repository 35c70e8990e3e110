/**
 * A fast CSV reader for the common case, with csv-parse as its oracle: it accepts only
 * well-formed input (RFC 4180 quoting: a quote opens a field or doubles inside a quoted one)
 * and gives exactly csv-parse's records for it under the options `parse.ts` uses. Anything
 * else (a quote inside an unquoted field, text after a closing quote, an unclosed quote,
 * invalid UTF-8) returns `null`, and the caller hands the chunk to csv-parse, which knows
 * every rule. `fast_csv_test.ts` checks the agreement on generated and nasty input.
 *
 * Lines without a quote are split with `String.prototype.split`, which is native and
 * several times faster than a byte-by-byte state machine in JavaScript.
 */

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * Records of a UTF-8 chunk (BOM already stripped), or `null` when csv-parse must decide.
 * `delimiter` and `quote` are single characters.
 */
export function fastCsvRecords(
  body: Uint8Array,
  delimiter: string,
  quote: string,
): string[][] | null {
  const reader = FastCsvReader.open(body, delimiter, quote);
  return reader && reader.next(Infinity);
}

/**
 * The records of one chunk's text, a batch at a time, so that a caller can finish with a
 * batch before the next is made. {@link FastCsvReader.next} gives `null` as soon as it meets
 * input that only csv-parse may judge; records given before then stay valid, but the chunk
 * as a whole is csv-parse's.
 */
export class FastCsvReader {
  #pos = 0;
  readonly #q: number;
  readonly #d: number;

  private constructor(
    readonly text: string,
    readonly delimiter: string,
    readonly quote: string,
  ) {
    this.#q = quote.charCodeAt(0);
    this.#d = delimiter.charCodeAt(0);
  }

  /** A reader of a UTF-8 chunk (BOM stripped), or `null` when csv-parse must read it. */
  static open(body: Uint8Array, delimiter: string, quote: string): FastCsvReader | null {
    if (delimiter.length !== 1 || quote.length !== 1 || delimiter === quote) return null;
    if (delimiter === "\n" || delimiter === "\r" || quote === "\n" || quote === "\r") return null;
    const text = decoder.decode(body);
    if (text.includes("\uFFFD")) return null; // invalid bytes (or a real U+FFFD): csv-parse decides
    return new FastCsvReader(text, delimiter, quote);
  }

  /** Back to the first record. */
  rewind(): void {
    this.#pos = 0;
  }

  /** Up to `max` more records (`[]` at the end), or `null`: csv-parse must decide. */
  next(max: number): string[][] | null {
    const { text, delimiter, quote } = this;
    const records: string[][] = [];
    const n = text.length;
    const q = this.#q;
    const d = this.#d;
    let pos = this.#pos;
    while (pos < n && records.length < max) {
      let nl = text.indexOf("\n", pos);
      if (nl < 0) nl = n;
      let end = nl;
      if (end > pos && text.charCodeAt(end - 1) === 13) end--;
      const line = text.slice(pos, end);
      if (line.indexOf(quote) < 0) {
        if (line.trim().length === 0) {
          // csv-parse's skip_empty_lines drops blank lines; a whitespace-only line that is
          // not empty is left to csv-parse's rules.
          if (line.length !== 0) return null;
        } else {
          records.push(line.split(delimiter));
        }
        pos = nl + 1;
        continue;
      }
      // A record with quotes (it may span lines): a small state machine from `pos`.
      const record: string[] = [];
      let i = pos;
      for (;;) {
        if (i < n && text.charCodeAt(i) === q) {
          // Quoted field.
          let value = "";
          let from = i + 1;
          for (;;) {
            const close = text.indexOf(quote, from);
            if (close < 0) return null; // unclosed quote
            if (close + 1 < n && text.charCodeAt(close + 1) === q) {
              value += text.slice(from, close + 1);
              from = close + 2;
              continue;
            }
            value += text.slice(from, close);
            i = close + 1;
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
      records.push(record);
    }
    this.#pos = pos;
    return records;
  }
}
