/**
 * Options of a dataset upload: how to read the file and how to clean it. Validated once at
 * upload and stored with the dataset, so every chunk is read the same way.
 */
import { z } from "zod";

export const DATASET_FORMATS = ["csv", "tsv", "json", "ndjson"] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];
/**
 * What an upload may be: a dataset format, or an `.xlsx` workbook (one sheet of it is stored
 * as NDJSON, see `ingest/xlsx.ts`).
 */
export const UPLOAD_FORMATS = [...DATASET_FORMATS, "xlsx"] as const;
export type UploadFormat = (typeof UPLOAD_FORMATS)[number];

/** Where a dataset read from a spreadsheet came from (set by the upload, never by a client). */
export const spreadsheetSource = z.object({
  format: z.literal("xlsx"),
  /** The sheet read, and its 1-based position. */
  sheet: z.string(),
  sheetIndex: z.number().int().min(1),
  /** Every sheet of the workbook, in order. */
  sheets: z.array(z.string()),
  /**
   * The workbook's own SHA-256 and size. The dataset's blob is the sheet as NDJSON; the
   * workbook is not kept (collected as any unheld upload).
   */
  sha256: z.string(),
  sizeBytes: z.number(),
}).strict();
export type SpreadsheetSource = z.infer<typeof spreadsheetSource>;

/**
 * Default most columns of a dataset (PostgreSQL's own limit is 1,600 a table; a file near it
 * would fail only at the table's creation, after its whole header was parsed).
 */
export const MAX_COLUMNS = 1000;
/** Default longest CSV header line, in bytes. */
export const MAX_HEADER_BYTES = 1024 * 1024;

const columnName = z.string().min(1).max(200);

export const cleaningOptions = z.object({
  trim: z.boolean().default(true),
  emptyAsNull: z.boolean().default(true),
  /**
   * Values that mean null (after trimming) in a column whose other values are not text (numbers,
   * dates, booleans); in a text column they are text. Default `NULL_TOKENS` of the ingest
   * library (NA, N/A, n/a, #N/A, null, NULL, None, NaN, nan, -); `[]`: none.
   */
  nullTokens: z.array(z.string().max(50)).max(50).optional(),
  /** Accept `1,234.5` as a number. */
  thousands: z.boolean().default(false),
  dropColumns: z.array(columnName).max(1000).default([]),
  renameColumns: z.record(columnName, columnName).default({}),
  dropDuplicateRows: z.boolean().default(false),
}).strict();

export const datasetOptions = z.object({
  format: z.enum(DATASET_FORMATS),
  /** One character; default `,` for csv and a tab for tsv. */
  delimiter: z.string().length(1).optional(),
  /**
   * CSV/TSV: the quote character, or `""` for none (quotes are then text). Default `"` for
   * csv and none for tsv, which has no quoting (IANA `text/tab-separated-values`).
   */
  quote: z.string().regex(/^[\x21-\x7e]?$/, "one printable ASCII character, or empty for none")
    .optional(),
  /** CSV/TSV: the first record names the columns. */
  header: z.boolean().default(true),
  /**
   * `auto`: a BOM's encoding, else UTF-8 when the first megabyte is valid UTF-8, else
   * Windows-1252. Bytes invalid in the encoding fail the dataset with `INVALID_ENCODING`.
   */
  encoding: z.enum(["auto", "utf-8", "utf-16le", "utf-16be", "latin1", "windows-1252"])
    .default("auto"),
  /** `skip`: drop bad rows and report them; `fail`: fail the dataset at the first one. */
  errorPolicy: z.enum(["skip", "fail"]).default("skip"),
  cleaning: cleaningOptions.default(cleaningOptions.parse({})),
  /** Set when the file was a spreadsheet (`format` is then `ndjson`, what it is stored as). */
  spreadsheet: spreadsheetSource.optional(),
}).strict().refine((o) => o.quote === undefined || o.quote !== (o.delimiter ?? ","), {
  message: "the quote character must differ from the delimiter",
  path: ["quote"],
});

export type DatasetOptions = z.infer<typeof datasetOptions>;

/** The format a content type or file name suggests, if any. */
export function guessFormat(
  contentType: string | null,
  fileName: string | null,
): UploadFormat | null {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  const byType: Record<string, UploadFormat> = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": "xlsx",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
  };
  if (byType[type]) return byType[type];
  // `x.csv.gz` is read as `x.csv` (gzip is seen by its bytes).
  const ext = /\.([a-z0-9]+)(?:\.gz)?$/i.exec(fileName ?? "")?.[1]?.toLowerCase();
  const byExt: Record<string, UploadFormat> = {
    xlsx: "xlsx",
    xlsm: "xlsx",
    csv: "csv",
    tsv: "tsv",
    tab: "tsv",
    json: "json",
    ndjson: "ndjson",
    jsonl: "ndjson",
  };
  return ext ? byExt[ext] ?? null : null;
}
