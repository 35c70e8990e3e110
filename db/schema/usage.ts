/**
 * Report syncs: usage pulled from a tenant's external usage API.
 *
 * - `usageSnapshots`: every external message once per (tenant, source, message id); `day` is
 *   the message's calendar day in the tenant's time zone; credits are integer cents; `seq`
 *   grows on every insert or change (the live stream resumes from it).
 * - `usageDaily`, `usageReportTotals`: exact sums kept in the transaction that writes the
 *   snapshots (actors/usage/store.ts).
 * - `usageReports`: report names fetched from the API, with an expiry; `found` false is a 404.
 */
import {
  bigint,
  boolean,
  date,
  index,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const usageSnapshots = pgTable(
  "troupe_usage_snapshots",
  {
    tenantId: text("tenant_id").notNull(),
    sourceId: text("source_id").notNull(),
    messageId: text("message_id").notNull(),
    ts: tz("ts").notNull(),
    day: date("day").notNull(),
    creditsCents: bigint("credits_cents", { mode: "bigint" }).notNull(),
    reportId: text("report_id"),
    reportName: text("report_name"),
    seq: bigint("seq", { mode: "bigint" }).notNull(),
    firstSeenAt: tz("first_seen_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
  },
  (t) => [
    primaryKey({
      name: "troupe_usage_snapshots_pk",
      columns: [t.tenantId, t.sourceId, t.messageId],
    }),
    index("troupe_usage_snapshots_ts_idx").on(t.tenantId, t.ts, t.sourceId, t.messageId),
    index("troupe_usage_snapshots_seq_idx").on(t.tenantId, t.seq),
  ],
);

export const usageDaily = pgTable(
  "troupe_usage_daily",
  {
    tenantId: text("tenant_id").notNull(),
    sourceId: text("source_id").notNull(),
    day: date("day").notNull(),
    creditsCents: bigint("credits_cents", { mode: "bigint" }).notNull(),
    messages: bigint("messages", { mode: "bigint" }).notNull(),
  },
  (t) => [primaryKey({ name: "troupe_usage_daily_pk", columns: [t.tenantId, t.day, t.sourceId] })],
);

export const usageReportTotals = pgTable(
  "troupe_usage_report_totals",
  {
    tenantId: text("tenant_id").notNull(),
    sourceId: text("source_id").notNull(),
    /** The report id, or '' for messages with none. */
    reportKey: text("report_key").notNull(),
    reportName: text("report_name"),
    creditsCents: bigint("credits_cents", { mode: "bigint" }).notNull(),
    messages: bigint("messages", { mode: "bigint" }).notNull(),
  },
  (t) => [
    primaryKey({
      name: "troupe_usage_report_totals_pk",
      columns: [t.tenantId, t.sourceId, t.reportKey],
    }),
  ],
);

export const usageReports = pgTable(
  "troupe_usage_reports",
  {
    tenantId: text("tenant_id").notNull(),
    sourceId: text("source_id").notNull(),
    reportId: text("report_id").notNull(),
    name: text("name"),
    found: boolean("found").notNull(),
    fetchedAt: tz("fetched_at").notNull().defaultNow(),
    expiresAt: tz("expires_at").notNull(),
  },
  (t) => [
    primaryKey({ name: "troupe_usage_reports_pk", columns: [t.tenantId, t.sourceId, t.reportId] }),
  ],
);
