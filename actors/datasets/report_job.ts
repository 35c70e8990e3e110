/**
 * `dataset.report` (key `dataset-report:<id>`): writes a ready dataset's PDF report
 * (report.ts) and stores it as the dataset's document (actors/documents/stored.ts) at the
 * dataset's version. The route enqueues it once per dataset version (an idempotency key), so
 * asking for the report again while it is made joins the same job.
 *
 * A redelivery writes the same report again: the blob is content-addressed and the row's
 * upsert commits with the message, so nothing is stored twice. A dataset that moved on
 * (another version, deleted, no longer ready) before the job ran stores nothing: the job
 * ends with `stale: true`, and a request for the report starts the job of the new version.
 */
import { z } from "zod";
import { defineActor, NotFoundError, type SqlDatabase } from "@troupe/runtime";
import type { BlobStore } from "../../db/blobs/port.ts";
import { putDocumentBytes, recordDocument } from "../documents/stored.ts";
import { type ColumnSummary, datasetReport, type ReportInput } from "./report.ts";
import { type DatasetView, getDataset } from "./store.ts";

export const DATASET_REPORT_ACTOR = "dataset.report";

const reportJobInput = z.object({
  datasetId: z.string().uuid(),
  tenantId: z.string().min(1),
  version: z.number().int().min(1),
});

export type ReportJobInput = z.infer<typeof reportJobInput>;

export interface ReportJobResult {
  stale: boolean;
  version: number;
  sha256?: string;
  size?: number;
}

/** The report's file name for a dataset's name. */
export function reportFileName(name: string): string {
  return `${name.replace(/[^\w.-]+/g, "_").slice(0, 80) || "dataset"}-report.pdf`;
}

/** What the report draws of a dataset. */
export function reportInput(d: DatasetView, generatedAt?: Date): ReportInput {
  return {
    name: d.name,
    id: d.id,
    format: d.format,
    sizeBytes: d.sizeBytes,
    rowCount: d.rowCount ?? 0,
    skippedRows: d.skippedRows,
    createdAt: d.createdAt,
    columns: d.columns.map((col) => ({
      name: col.name,
      type: col.type,
      profile: (col.profile ?? null) as ColumnSummary | null,
    })),
    ...(generatedAt ? { generatedAt } : {}),
  };
}

export function datasetReportActor(o: { db: SqlDatabase; blobs: BlobStore }) {
  return defineActor({
    name: DATASET_REPORT_ACTOR,
    input: reportJobInput,
    key: (i) => `dataset-report:${i.datasetId}`,
    exposed: false,
    retries: 3,
    timeoutMs: 5 * 60_000,
    concurrency: 2,
    handler: async (input, ctx): Promise<ReportJobResult> => {
      const stale = { stale: true, version: input.version };
      let d: DatasetView;
      try {
        d = await getDataset(o.db, input.datasetId, input.tenantId);
      } catch (err) {
        if (err instanceof NotFoundError) return stale;
        throw err;
      }
      if (d.version !== input.version || d.status !== "ready") return stale;
      ctx.progress(10, "writing the report");
      const pdf = await datasetReport(reportInput(d));
      ctx.progress(80, "storing the report");
      const file = await putDocumentBytes(o.db, o.blobs, pdf);
      ctx.effect(async (tx) => {
        // Only while the dataset is still at this version (a merge may have committed since).
        const [same] = await tx.query(
          "SELECT 1 FROM troupe_datasets WHERE id = $1 AND version = $2 FOR SHARE",
          [d.id, d.version],
        );
        if (!same) return;
        await recordDocument(tx, o.blobs, {
          tenantId: input.tenantId,
          kind: "dataset_report",
          key: d.id,
          version: String(d.version),
          sha256: file.sha256,
          size: file.size,
          contentType: "application/pdf",
          fileName: reportFileName(d.name),
          jobId: ctx.jobId,
        });
      });
      return { stale: false, version: d.version, ...file };
    },
  });
}
