/**
 * Spreadsheet uploads: a stored `.xlsx` blob becomes a second blob, one of its sheets as NDJSON
 * (`ingest/xlsx.ts`), which is what the dataset holds and the pipeline splits. Spreadsheets
 * cannot be split by lines, and a workbook needs its shared strings and styles before its
 * sheet, which Excel writes last: so the workbook is stored first (streamed, bounded like any
 * upload), then read back by range. The workbook itself is held by nothing: it is collected
 * with other unheld blobs after the grace period; the dataset's options record its SHA-256,
 * its sheets and the sheet read.
 *
 * Errors become the upload's answer: a ZIP that is no workbook (a `.docx`, `.ods`, `.jar`) is
 * a 415 naming the supported formats; a corrupt workbook a 422 `BAD_XLSX`; a missing sheet a
 * 422 `SHEET_NOT_FOUND` listing the sheets; a sheet too wide a 422 `TOO_MANY_COLUMNS`; a sheet
 * that inflates too far (a zip bomb) a 413.
 */
import { type SqlExecutor, TroupeError } from "@troupe/runtime";
import type { BlobStore } from "../../db/blobs/port.ts";
import { noteStored } from "../../db/blobs/refs.ts";
import type { SpreadsheetSource } from "./options.ts";
import { XlsxError, type XlsxOptions, xlsxToNdjson } from "./ingest/xlsx.ts";
import type { RandomAccess } from "./ingest/zip.ts";
import { ZipError } from "./ingest/zip.ts";
import { IngestError } from "./ingest/errors.ts";

/** A stored blob read by range. */
export function blobAccess(blobs: BlobStore, sha256: string, size: number): RandomAccess {
  return {
    size,
    bytes: (start, end) => blobs.bytes(sha256, { start, end }),
    stream: (start, end) => blobs.read(sha256, { start, end }),
  };
}

/** Options of {@link storeSheet}. */
export interface StoreSheetOptions extends XlsxOptions {
  /** Largest NDJSON stored (as any upload's file). */
  maxBytes: number;
  /** What a 415 says the API reads. */
  supported: readonly string[];
}

/**
 * Reads a sheet of the stored workbook `xlsx` and stores it as NDJSON; returns the NDJSON
 * blob and where it came from. Throws the upload's answer as a {@link TroupeError}.
 */
export async function storeSheet(
  blobs: BlobStore,
  db: SqlExecutor,
  xlsx: { sha256: string; size: number },
  o: StoreSheetOptions,
): Promise<{ sha256: string; size: number; source: SpreadsheetSource }> {
  try {
    const sheet = await xlsxToNdjson(blobAccess(blobs, xlsx.sha256, xlsx.size), o);
    const put = await blobs.put(sheet.rows, { maxBytes: o.maxBytes });
    await noteStored(db, put.sha256);
    return {
      sha256: put.sha256,
      size: put.size,
      source: {
        format: "xlsx",
        sheet: sheet.sheet,
        sheetIndex: sheet.index,
        sheets: sheet.sheets,
        sha256: xlsx.sha256,
        sizeBytes: xlsx.size,
      },
    };
  } catch (err) {
    throw err instanceof IngestError ? refuseSpreadsheet(err, o.supported) : err;
  }
}

/** A spreadsheet's trouble as the upload's answer. */
export function refuseSpreadsheet(err: IngestError, supported: readonly string[]): TroupeError {
  if (err instanceof ZipError) {
    if (err.code === "bad_zip") {
      return new TroupeError("BAD_XLSX", err.message);
    }
    return new TroupeError("PAYLOAD_TOO_LARGE", err.message, {
      details: err.code === "inflate_ratio"
        ? { maxInflateRatio: err.limit }
        : { maxInflatedBytes: err.limit },
    });
  }
  if (err instanceof XlsxError) {
    if (err.code === "not_xlsx") {
      return new TroupeError(
        "UNSUPPORTED_MEDIA_TYPE",
        `${err.message}: send CSV, TSV, a JSON array or NDJSON (optionally gzipped), or an .xlsx workbook`,
        { details: { detected: "zip", supported, ...err.details } },
      );
    }
    return new TroupeError(err.code.toUpperCase(), err.message, {
      details: err.details,
    });
  }
  return new TroupeError("BAD_XLSX", err.message);
}
