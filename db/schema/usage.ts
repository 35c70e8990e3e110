/**
 * Report syncs: usage pulled from a tenant's external usage API.
 *
 * - `usageSnapshots`: every external message once per (tenant, source, message id); `day` is
 *   the message's calendar day in the tenant's time zone; credits are integer cents; `seq`
 *   grows on every insert or change (the live stream resumes from it).
 * - `usageDaily`, `usageReportTotals`: exact sums kept in the transaction that writes the
 *   snapshots (actors/usage/store.ts).
 * - `usageReports`: report names fetched from the API, with an expiry; `found` false is a 404.
 * - `usageSources`: the external usage APIs a tenant connects (token sealed, never returned),
 *   the cursor each continues from and the schedule's next slot (actors/usage/sources.ts).
 * - `usageSyncs`: the history of syncs with their counters (actors/usage/sync.ts).
 * - `usageSeq`: the sequence `seq` is taken from.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  date,
  index,
  integer,
  jsonb,
  pgSequence,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** Numbers each snapshot insert or change (`usageSnapshots.seq`). */
export const usageSeq = pgSequence("troupe_usage_seq");

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
    // One index per sort and filter of GET /api/usage, each ending in the unique key.
    index("troupe_usage_snapshots_credits_idx").on(
      t.tenantId,
      t.creditsCents,
      t.ts,
      t.sourceId,
      t.messageId,
    ),
    index("troupe_usage_snapshots_report_name_idx").on(
      t.tenantId,
      sql`coalesce(${t.reportName}, '')`,
      t.ts,
      t.sourceId,
      t.messageId,
    ),
    index("troupe_usage_snapshots_report_idx").on(
      t.tenantId,
      t.reportId,
      t.ts,
      t.sourceId,
      t.messageId,
    ),
    index("troupe_usage_snapshots_source_idx").on(t.tenantId, t.sourceId, t.ts, t.messageId),
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

export const usageSources = pgTable(
  "troupe_usage_sources",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    name: text("name").notNull(),
    baseUrl: text("base_url").notNull(),
    /** The API token, sealed with SECRET_KEYS (db/secrets.ts). */
    tokenSealed: text("token_sealed").notNull(),
    pageSize: integer("page_size").notNull(),
    concurrency: integer("concurrency").notNull(),
    requestsPerMinute: integer("requests_per_minute").notNull(),
    schedule: text("schedule").notNull(),
    /** The schedule's next slot; null: not scheduled. */
    nextRunAt: tz("next_run_at"),
    /** Where the next sync continues, committed with the page it follows. */
    cursor: text("cursor"),
    currentSyncId: text("current_sync_id"),
    createdAt: tz("created_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
    /** The URL a source's syncs call back when they end; null: none. */
    callbackUrl: text("callback_url"),
  },
  (t) => [
    index("troupe_usage_sources_tenant_idx").on(t.tenantId, t.createdAt, t.id),
    index("troupe_usage_sources_due_idx").on(t.nextRunAt).where(sql`${t.nextRunAt} IS NOT NULL`),
  ],
);

export const usageSyncs = pgTable(
  "troupe_usage_syncs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    sourceId: text("source_id").notNull(),
    /** What started it (`SyncTrigger` of actors/usage/sync.ts). */
    trigger: text("trigger").notNull(),
    scheduledFor: tz("scheduled_for"),
    /** running | succeeded | failed | cancelled */
    status: text("status").notNull(),
    startCursor: text("start_cursor"),
    cursor: text("cursor"),
    pages: integer("pages").notNull().default(0),
    messagesNew: integer("messages_new").notNull().default(0),
    messagesSeen: integer("messages_seen").notNull().default(0),
    messagesChanged: integer("messages_changed").notNull().default(0),
    reportsFetched: integer("reports_fetched").notNull().default(0),
    reportsCached: integer("reports_cached").notNull().default(0),
    reportsMissing: integer("reports_missing").notNull().default(0),
    calls: integer("calls").notNull().default(0),
    errors: integer("errors").notNull().default(0),
    rateLimited: integer("rate_limited").notNull().default(0),
    error: jsonb("error"),
    startedAt: tz("started_at").notNull().defaultNow(),
    finishedAt: tz("finished_at"),
  },
  (t) => [index("troupe_usage_syncs_source_idx").on(t.sourceId, t.startedAt, t.id)],
);
