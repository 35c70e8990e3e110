/**
 * `GET /api/usage/export`: the snapshots a filter keeps, oldest first, read by keyset pages as
 * the client reads the body (CSV, or XLSX through the dataset export's streaming writer), so
 * memory holds about one page whatever the tenant's usage.
 */
import { type SheetColumn, xlsxStream } from "../actors/datasets/export_xlsx.ts";
import type { SqlExecutor } from "@troupe/runtime";
import { listUsage, type Range, type UsageFilter } from "../actors/usage/queries.ts";
import { csvLine } from "./csv.ts";

const PAGE = 1000;

const COLUMNS: SheetColumn[] = [
  { name: "timestamp", key: "timestamp", type: "datetime" },
  { name: "day", key: "day", type: "date" },
  { name: "source_id", key: "sourceId", type: "text" },
  { name: "message_id", key: "messageId", type: "text" },
  { name: "credits_used", key: "creditsUsed", type: "float" },
  { name: "report_id", key: "reportId", type: "text" },
  { name: "report_name", key: "reportName", type: "text" },
];

export function usageExport(
  db: SqlExecutor,
  tenantId: string,
  filter: UsageFilter,
  range: Range,
  format: "csv" | "xlsx",
): Response {
  let cursor: string | undefined;
  let done = false;
  const next = async (): Promise<Record<string, unknown>[]> => {
    if (done) return [];
    const page = await listUsage(db, tenantId, range, {
      filter,
      sortBy: "timestamp",
      sortOrder: "asc",
      pageSize: PAGE,
      ...(cursor !== undefined ? { cursor } : {}),
    });
    cursor = page.nextCursor ?? undefined;
    done = page.nextCursor === null;
    return page.items.map((i) => ({ ...i, timestamp: new Date(i.timestamp) }));
  };
  const name = `usage-${tenantId}`;
  if (format === "xlsx") {
    return new Response(xlsxStream("Usage", COLUMNS, next), {
      headers: {
        "content-type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "content-disposition": `attachment; filename="${name}.xlsx"`,
      },
    });
  }
  const encoder = new TextEncoder();
  let started = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(csvLine(COLUMNS.map((c) => c.name))));
        return;
      }
      const rows = await next();
      if (rows.length === 0) {
        controller.close();
        return;
      }
      const lines = rows.map((r) =>
        csvLine(COLUMNS.map((c) => {
          const v = r[c.key];
          if (v instanceof Date) return v.toISOString();
          return c.key === "creditsUsed" ? (v as number).toFixed(2) : v;
        }))
      );
      controller.enqueue(encoder.encode(lines.join("")));
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="${name}.csv"`,
    },
  });
}
