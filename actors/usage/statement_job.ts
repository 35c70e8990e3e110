/**
 * `usage.statement` (key `statement:<tenant>:<month>`): reads a month of a tenant's usage
 * (statement_data.ts), writes the statement as a PDF or an `.xlsx`, and stores it as the
 * tenant's document of that month and format (actors/documents/stored.ts). The route enqueues
 * it once per (tenant, month, format, version of the month's usage), so asking again while the
 * usage has not changed returns the same job and file.
 *
 * A redelivery writes the file again: the document row and the job's result commit with the
 * message that succeeds, and the blob of an attempt that did not commit is held by nothing
 * and collected after the grace period.
 */
import { z } from "zod";
import { defineActor, type SqlDatabase } from "@troupe/runtime";
import type { BlobStore } from "../../db/blobs/port.ts";
import { type DocumentFile, putDocumentBytes, recordDocument } from "../documents/stored.ts";
import { loadStatementData, MONTH } from "./statement_data.ts";
import { buildStatementPdf } from "./statement_pdf.ts";
import { buildStatementXlsx, XLSX_TYPE } from "./statement_xlsx.ts";
import { centsText } from "./money.ts";

export const STATEMENT_ACTOR = "usage.statement";
export const STATEMENT_FORMATS = ["pdf", "xlsx"] as const;
export type StatementFormat = (typeof STATEMENT_FORMATS)[number];

export const statementInput = z.object({
  tenantId: z.string().min(1),
  month: z.string().regex(MONTH, "YYYY-MM"),
  format: z.enum(STATEMENT_FORMATS),
  /** The version of the month's usage when it was asked for (the idempotency key has it). */
  version: z.string().min(1).max(200),
});

export type StatementInput = z.infer<typeof statementInput>;

export interface StatementResult {
  month: string;
  format: StatementFormat;
  /** The version of the usage the file was made from (newer than asked, if it moved since). */
  version: string;
  file: DocumentFile;
  /** The month's total credits, two places. */
  totalCredits: string;
  messages: number;
}

/** The statement's file name. */
export function statementFileName(month: string, format: StatementFormat): string {
  return `usage-statement-${month}.${format}`;
}

export interface StatementActorOptions {
  db: SqlDatabase;
  blobs: BlobStore;
  /** Attempts after the first. @default 3 */
  retries?: number;
}

export function statementActor(o: StatementActorOptions) {
  return defineActor({
    name: STATEMENT_ACTOR,
    input: statementInput,
    key: (i) => `statement:${i.tenantId}:${i.month}`,
    exposed: false,
    retries: o.retries ?? 3,
    timeoutMs: 5 * 60_000,
    concurrency: 2,
    handler: async (input, ctx): Promise<StatementResult> => {
      ctx.progress(5, "reading usage");
      const data = await loadStatementData(o.db, input.tenantId, input.month);
      ctx.progress(30, `writing the ${input.format}`);
      const bytes = input.format === "pdf"
        ? await buildStatementPdf(data)
        : await buildStatementXlsx(data);
      ctx.progress(80, "storing the file");
      const put = await putDocumentBytes(o.db, o.blobs, bytes);
      const file: DocumentFile = {
        ...put,
        contentType: input.format === "pdf" ? "application/pdf" : XLSX_TYPE,
        fileName: statementFileName(input.month, input.format),
      };
      ctx.effect((tx) =>
        recordDocument(tx, o.blobs, {
          tenantId: input.tenantId,
          kind: "statement",
          key: `${input.month}:${input.format}`,
          version: data.version,
          jobId: ctx.jobId,
          ...file,
        })
      );
      return {
        month: input.month,
        format: input.format,
        version: data.version,
        file,
        totalCredits: centsText(data.total.creditsCents),
        messages: data.total.messages,
      };
    },
  });
}
