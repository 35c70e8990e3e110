/**
 * Usage of the tenant's messages (actors/usage/README.md):
 *
 * - `GET /api/usage`: snapshots, a page (`page`, `pageSize` ≤ 100, with `total` and
 *   `totalPages`) or a keyset `cursor` (`nextCursor`); `sortBy` timestamp | credits_used |
 *   report_name, `sortOrder`; filters `from`, `to` (an ISO instant with its offset, or a day:
 *   `from` its start, `to` its end), `sourceId`, `reportId`;
 * - `GET /api/usage/daily`, `GET /api/usage/reports`, `GET /api/usage/forecast?month=`;
 * - `GET /api/usage/stream`: server-sent `usage` events as syncs commit (`id` = seq; resumes
 *   after `Last-Event-ID`);
 * - `GET /api/usage/export?format=csv|xlsx`: every snapshot the filters keep, streamed;
 * - `GET/PATCH /api/tenant`: the tenant's time zone (days and aggregates follow it).
 *
 * Credits are JSON numbers with at most two decimals, exact to the cent: they are kept as
 * integer cents and written from their decimal text.
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { type Runtime, ValidationError } from "@troupe/runtime";
import { localDay } from "../actors/usage/days.ts";
import { forecast } from "../actors/usage/forecast.ts";
import { dailyUsage, REPORT_SORTS, reportUsage } from "../actors/usage/aggregates.ts";
import {
  type Bound,
  countUsage,
  listUsage,
  rangeOf,
  SORTS,
  tenantTimeZone,
  type UsageFilter,
} from "../actors/usage/queries.ts";
import { UsageFeed, type UsageFeedOptions } from "../actors/usage/stream.ts";
import { setTimeZone } from "../actors/usage/zone.ts";
import type { TenantStore } from "../db/tenants.ts";
import { principalOf } from "./auth.ts";
import type { AppEnv } from "./env.ts";
import { auditContext } from "./jobs.ts";
import { declare, JsonObject } from "./openapi.ts";
import { usageExport } from "./usage_export.ts";
import { jsonBody, parseBody, parseQuery } from "./validate.ts";

const tags = ["usage"];

const DAY = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const INSTANT =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
const realDay = (s: string) => new Date(`${s}T00:00:00Z`).toISOString().slice(0, 10) === s;

const bound = z.string().max(40).refine(
  (s) => (DAY.test(s) && realDay(s)) || (INSTANT.test(s) && realDay(s.slice(0, 10))),
  "must be a day (YYYY-MM-DD) or an ISO 8601 instant with its offset",
).openapi({ example: "2026-12-01" });
/** Source ids are Troupe ids; report ids are the external API's (ints or simple strings). */
const sourceId = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "is not a source id");
const reportId = z.string().regex(/^[\w.:@-]{1,128}$/, "is not a report id");
const sortOrder = z.enum(["asc", "desc"]);

const filters = {
  from: bound.optional(),
  to: bound.optional(),
  sourceId: sourceId.optional(),
  reportId: reportId.optional(),
};

/** An offset page reaches this many rows at most; the keyset cursor goes anywhere. */
export const MAX_OFFSET_ROWS = 10_000;

const listQuery = z.object({
  ...filters,
  page: z.coerce.number().int().min(1).max(MAX_OFFSET_ROWS).optional(),
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(1000).optional(),
  sortBy: z.enum(SORTS).default("timestamp"),
  sortOrder: sortOrder.default("desc"),
}).strict();

const dailyQuery = z.object({
  from: bound.optional(),
  to: bound.optional(),
  sourceId: sourceId.optional(),
}).strict();

const reportsQuery = z.object({
  sourceId: sourceId.optional(),
  sortBy: z.enum(REPORT_SORTS).default("credits_used"),
  sortOrder: sortOrder.default("desc"),
  page: z.coerce.number().int().min(1).max(MAX_OFFSET_ROWS).default(1),
  pageSize: z.coerce.number().int().min(1).max(100).default(20),
}).strict();

const forecastQuery = z.object({
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "must be YYYY-MM"),
}).strict();

const exportQuery = z.object({ ...filters, format: z.enum(["csv", "xlsx"]).default("csv") })
  .strict();

const tenantBody = z.object({ timeZone: z.string().min(1).max(64) }).strict();

const UsageItem = z.object({
  sourceId: z.string(),
  messageId: z.string(),
  timestamp: z.string(),
  day: z.string(),
  creditsUsed: z.number(),
  reportId: z.string().nullable(),
  reportName: z.string().nullable(),
}).openapi("UsageItem");

const UsagePage = z.object({
  items: z.array(UsageItem),
  page: z.number().int().nullable(),
  pageSize: z.number().int(),
  total: z.number().int(),
  totalPages: z.number().int(),
  nextCursor: z.string().nullable(),
}).openapi("UsagePage");

const toBound = (s: string | undefined): Bound | undefined =>
  s === undefined ? undefined : DAY.test(s) ? { day: s } : { instant: new Date(s) };

function filterOf(q: z.infer<typeof listQuery> | z.infer<typeof exportQuery>): UsageFilter {
  return {
    ...(q.from !== undefined ? { from: toBound(q.from)! } : {}),
    ...(q.to !== undefined ? { to: toBound(q.to)! } : {}),
    ...(q.sourceId !== undefined ? { sourceId: q.sourceId } : {}),
    ...(q.reportId !== undefined ? { reportId: q.reportId } : {}),
  };
}

export interface UsageRoutesOptions {
  runtime: Runtime;
  tenants: TenantStore;
  /** The live stream's poll interval and bounds. */
  stream?: UsageFeedOptions;
  /** The tenant's current instant, for the forecast. @default the clock */
  now?: () => Date;
}

const KEEPALIVE_MS = 15_000;

export function usageRoutes(o: UsageRoutesOptions): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  const db = o.runtime.db;
  const feed = new UsageFeed(db, o.stream);
  const now = o.now ?? (() => new Date());

  declare(app, {
    method: "get",
    path: "/usage",
    tags,
    summary: "Usage snapshots: a page (page, pageSize) or a keyset cursor; sorted and filtered",
    query: listQuery,
    responses: { 200: { description: "A page of usage", schema: UsagePage } },
  }, async function listUsagePage(c) {
    const q = parseQuery(c, listQuery);
    if (q.cursor !== undefined && q.page !== undefined) {
      throw new ValidationError("invalid query parameter: page", [
        { path: "page", message: "give page or cursor, not both" },
      ]);
    }
    const page = q.cursor === undefined ? q.page ?? 1 : null;
    if (page !== null && page * q.pageSize > MAX_OFFSET_ROWS) {
      throw new ValidationError("invalid query parameter: page", [
        { path: "page", message: `pages reach ${MAX_OFFSET_ROWS} rows; go further by cursor` },
      ]);
    }
    const { tenantId } = principalOf(c);
    const filter = filterOf(q);
    // The zone only matters to a range: without one, the page and its total go at once.
    const timeZone = filter.from || filter.to ? await tenantTimeZone(db, tenantId) : "UTC";
    const range = await rangeOf(db, filter, timeZone);
    const [result, total] = await Promise.all([
      listUsage(db, tenantId, range, {
        filter,
        sortBy: q.sortBy,
        sortOrder: q.sortOrder,
        pageSize: q.pageSize,
        ...(page !== null ? { page } : {}),
        ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      }),
      countUsage(db, tenantId, filter, range, timeZone),
    ]);
    return c.json({
      items: result.items,
      page,
      pageSize: q.pageSize,
      total,
      totalPages: Math.ceil(total / q.pageSize),
      nextCursor: result.nextCursor,
    });
  });

  declare(app, {
    method: "get",
    path: "/usage/daily",
    tags,
    summary: "Per day (the tenant's days): credits, messages, average credits per message",
    description: "At most 1000 days from `from` (`truncated` says when more follow).",
    query: dailyQuery,
    responses: { 200: { description: "The days", schema: JsonObject } },
  }, async function dailyFigures(c) {
    const q = parseQuery(c, dailyQuery);
    const { tenantId } = principalOf(c);
    const zone = tenantTimeZone(db, tenantId);
    const instants = [q.from, q.to].some((s) => s !== undefined && !DAY.test(s));
    // An instant bound is read as its day in the tenant's zone; days need no zone first.
    const known = instants ? await zone : null;
    const dayOf = (s: string | undefined) =>
      s === undefined ? null : DAY.test(s) ? s : localDay(new Date(s), known!);
    const fromDay = dayOf(q.from);
    const toDay = dayOf(q.to);
    if (fromDay && toDay && fromDay > toDay) {
      await zone;
      throw new ValidationError("invalid query parameter: from", [
        { path: "from", message: "is after `to`" },
      ]);
    }
    const [timeZone, { days, truncated }] = await Promise.all([
      zone,
      dailyUsage(db, tenantId, {
        fromDay,
        toDay,
        ...(q.sourceId !== undefined ? { sourceId: q.sourceId } : {}),
      }),
    ]);
    return c.json({ timeZone, days, truncated });
  });

  declare(app, {
    method: "get",
    path: "/usage/reports",
    tags,
    summary: "Per report: credits and messages (reportId null: messages with no report)",
    query: reportsQuery,
    responses: { 200: { description: "A page of reports", schema: JsonObject } },
  }, async function reportFigures(c) {
    const q = parseQuery(c, reportsQuery);
    const { items, total } = await reportUsage(db, principalOf(c).tenantId, {
      ...(q.sourceId !== undefined ? { sourceId: q.sourceId } : {}),
      sortBy: q.sortBy,
      sortOrder: q.sortOrder,
      page: q.page,
      pageSize: q.pageSize,
    });
    return c.json({
      items,
      page: q.page,
      pageSize: q.pageSize,
      total,
      totalPages: Math.ceil(total / q.pageSize),
    });
  });

  declare(app, {
    method: "get",
    path: "/usage/forecast",
    tags,
    summary: "The month's projected credits, with the figures the projection used",
    description: "Method: actors/usage/README.md, section Forecast.",
    query: forecastQuery,
    responses: { 200: { description: "The forecast", schema: JsonObject } },
  }, async function monthForecast(c) {
    const q = parseQuery(c, forecastQuery);
    const { tenantId } = principalOf(c);
    const timeZone = await tenantTimeZone(db, tenantId);
    return c.json(
      await forecast(db, tenantId, { month: q.month, timeZone, today: localDay(now(), timeZone) }),
    );
  });

  declare(app, {
    method: "get",
    path: "/usage/stream",
    tags,
    summary: "Server-sent `usage` events as syncs commit (id: seq; resumes after Last-Event-ID)",
    description: "Without Last-Event-ID the stream starts with the usage written after it " +
      "opened. Every instance delivers what any instance committed.",
    headers: z.object({ "last-event-id": z.string().regex(/^\d{1,18}$/).optional() }),
    responses: { 200: { description: "An event stream", type: "text/event-stream" } },
  }, async function usageStream(c) {
    const lastId = c.req.header("last-event-id");
    if (lastId !== undefined && !/^\d{1,18}$/.test(lastId)) {
      throw new ValidationError("invalid header: Last-Event-ID", [
        { path: "last-event-id", message: "is not an event id of this stream" },
      ]);
    }
    const { tenantId } = principalOf(c);
    const sub = await feed.subscribe(tenantId); // a 429 as JSON before the stream starts
    let after: string;
    try {
      after = lastId ?? await feed.latest(tenantId);
    } catch (err) {
      sub.close();
      throw err;
    }
    return streamSSE(c, async function sendUsage(stream) {
      stream.onAbort(() => sub.close());
      let lastWrite = Date.now();
      try {
        while (!stream.aborted && !stream.closed) {
          const events = await feed.after(tenantId, after);
          for (const e of events) {
            await stream.writeSSE({ event: "usage", id: e.seq, data: JSON.stringify(e) });
            after = e.seq;
            lastWrite = Date.now();
          }
          if (events.length === 500) continue;
          if (Date.now() - lastWrite > KEEPALIVE_MS) {
            await stream.write(": keepalive\n\n");
            lastWrite = Date.now();
          }
          await sub.changed();
        }
      } finally {
        sub.close();
      }
    });
  });

  declare(app, {
    method: "get",
    path: "/usage/export",
    tags,
    summary: "Every snapshot the filters keep, oldest first, as CSV (default) or XLSX; streamed",
    query: exportQuery,
    responses: { 200: { description: "CSV or XLSX", type: "text/csv" } },
  }, async function exportUsage(c) {
    const q = parseQuery(c, exportQuery);
    const { tenantId } = principalOf(c);
    const timeZone = await tenantTimeZone(db, tenantId);
    const filter = filterOf(q);
    const range = await rangeOf(db, filter, timeZone);
    return usageExport(db, tenantId, filter, range, q.format);
  });

  declare(app, {
    method: "get",
    path: "/tenant",
    tags: ["tenant"],
    summary: "The caller's tenant: id, name, time zone",
    responses: { 200: { description: "The tenant", schema: JsonObject } },
  }, async function getTenant(c) {
    const { tenantId } = principalOf(c);
    const t = await o.tenants.getTenant(tenantId);
    return c.json({ id: t.id, name: t.name, timeZone: await tenantTimeZone(db, tenantId) });
  });

  declare(app, {
    method: "patch",
    path: "/tenant",
    tags: ["tenant"],
    summary: "Set the tenant's time zone (IANA); its daily usage is rebuilt in that zone",
    body: tenantBody,
    responses: { 200: { description: "The tenant", schema: JsonObject } },
  }, async function patchTenant(c) {
    const body = parseBody(await jsonBody(c), tenantBody);
    const { tenantId } = principalOf(c);
    const before = await tenantTimeZone(db, tenantId);
    const { changed, snapshots } = await setTimeZone(db, tenantId, body.timeZone);
    if (changed) {
      await o.tenants.audit({
        ...auditContext(c),
        action: "tenant.time_zone",
        targetType: "tenant",
        targetId: tenantId,
        details: { from: before, to: body.timeZone, snapshotsMoved: snapshots },
      });
    }
    const t = await o.tenants.getTenant(tenantId);
    return c.json({ id: t.id, name: t.name, timeZone: body.timeZone });
  });

  return app;
}
