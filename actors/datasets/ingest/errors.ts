/**
 * Typed errors of the ingest library. Every error carries the position it refers to, so the
 * pipeline can report "line 1234" or "byte 5678" to the user without re-reading the file.
 */

/** Base class of every error thrown by the ingest library. */
export class IngestError extends Error {
  override name = "IngestError";
}

/** Bytes that are not valid in the declared encoding (only raised in `fatal` mode). */
export class EncodingError extends IngestError {
  override name = "EncodingError";
  /** Machine-readable reason (the dataset's error code, upper-cased). */
  readonly code = "invalid_encoding";
  /**
   * @param encoding the encoding the file is read in
   * @param offset exact 0-based byte offset in the file of the first byte of the first invalid
   *   (or truncated) sequence
   * @param line 1-based physical line of that byte, when known
   */
  constructor(
    readonly encoding: string,
    readonly offset: number,
    readonly line?: number,
  ) {
    super(
      `the file is not valid ${encoding.toUpperCase()}` +
        (line === undefined ? "" : ` at line ${line}`) + ` (byte ${offset}): ` +
        "set the encoding option to the file's encoding (e.g. encoding=windows-1252)",
    );
  }
}

/** Why the splitter gave up on a file. */
export type SplitErrorCode =
  | "not_json_array"
  | "json_trailing_data"
  | "json_unterminated"
  | "record_too_large";

/** The splitter cannot cut the file into chunks. */
export class SplitError extends IngestError {
  override name = "SplitError";
  /**
   * @param code machine-readable reason
   * @param offset 0-based byte offset where the problem was detected
   * @param line 1-based physical line where the problem was detected (or the offending record
   *   started, for `record_too_large`)
   */
  constructor(
    readonly code: SplitErrorCode,
    readonly offset: number,
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

/** A JSON-array upload whose top-level value is not an array (objects, scalars, empty files). */
export class NotJsonArrayError extends SplitError {
  override name = "NotJsonArrayError";
  constructor(offset: number, line: number, found: string) {
    super("not_json_array", offset, line, `expected a top-level JSON array, found ${found}`);
  }
}

/** A bad row under the `fail` error policy: the whole dataset is rejected. */
export class RowError extends IngestError {
  override name = "RowError";
  /** @param line 1-based physical line of the file where the bad record starts */
  constructor(readonly line: number, readonly reason: string) {
    super(`line ${line}: ${reason}`);
  }
}

/** Why a file is over one of the limits the ingest is given. */
export type LimitCode = "too_many_columns" | "header_too_long";

/**
 * A file over a limit: more columns than allowed (a CSV header, the keys of JSON records), or
 * a header line longer than allowed (refused before it is read whole).
 */
export class LimitError extends IngestError {
  override name = "LimitError";
  /**
   * @param code which limit
   * @param limit the limit (columns, or bytes of the header line)
   * @param found how many columns were seen when it was refused (at least `limit + 1`)
   */
  constructor(readonly code: LimitCode, readonly limit: number, readonly found?: number) {
    super(
      code === "too_many_columns"
        ? `the file has more than ${limit} columns`
        : `the header line is longer than ${limit} bytes`,
    );
  }
}

/** Cleaning rules that cannot apply to the file's columns (a rename onto a name in use). */
export class ColumnRuleError extends IngestError {
  override name = "ColumnRuleError";
  readonly code = "duplicate_column";
  constructor(readonly column: string) {
    super(`renaming produces a duplicate column "${column}"`);
  }
}
