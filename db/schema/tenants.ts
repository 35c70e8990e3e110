/**
 * Tenants, their API keys and the audit log.
 *
 * - `tenants`: every API call acts for one tenant; jobs, datasets and courses carry its id.
 * - `apiKeys`: keys are stored as SHA-256 hashes; `prefix` (the first characters) names a key in
 *   listings and logs without revealing it.
 * - `callbackSecrets`: the key that signs a tenant's completion callbacks, sealed.
 * - `consoleSessions`: the console's logins, by the hash of the cookie's id, on any instance.
 * - `auditLog`: who did what (uploads, cancels, replays, cache invalidations, key creation);
 *   the cleanup actor keeps it 90 days.
 */
import { sql } from "drizzle-orm";
import {
  boolean,
  check,
  foreignKey,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const tenants = pgTable("troupe_tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull().unique(),
  createdAt: tz("created_at").notNull().defaultNow(),
  /** Requests a minute allowed to each of the tenant's keys; null: the server's default. */
  rateLimitPerMinute: integer("rate_limit_per_minute"),
  /** IANA zone that usage days, daily aggregates and statements follow. */
  timeZone: text("time_zone").notNull().default("UTC"),
});

export const apiKeys = pgTable(
  "troupe_api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull().references(() => tenants.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    prefix: text("prefix").notNull(),
    hash: text("hash").notNull().unique(),
    createdAt: tz("created_at").notNull().defaultNow(),
    revokedAt: tz("revoked_at"),
    /** Sees and acts on state shared by every tenant (cache statistics and invalidation). */
    admin: boolean("admin").notNull().default(false),
    /** `full`, or `read`: reads only (GET, HEAD and questions to a course). */
    scope: text("scope", { enum: ["full", "read"] }).notNull().default("full"),
    /** When a key replaced by a rotation stops working; null: until revoked. */
    expiresAt: tz("expires_at"),
  },
  (t) => [
    index("troupe_api_keys_tenant_idx").on(t.tenantId),
    check("troupe_api_keys_scope_check", sql`${t.scope} IN ('full', 'read')`),
  ],
);

export const auditLog = pgTable(
  "troupe_audit_log",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id"),
    apiKeyId: text("api_key_id"),
    action: text("action").notNull(),
    targetType: text("target_type"),
    targetId: text("target_id"),
    details: jsonb("details"),
    ip: text("ip"),
    requestId: text("request_id"),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  (t) => [
    index("troupe_audit_log_tenant_idx").on(t.tenantId, t.id),
    index("troupe_audit_log_created_idx").on(t.createdAt),
  ],
);

/** Each tenant's key for signing completion callbacks, sealed (see actors/system/callback.ts). */
export const callbackSecrets = pgTable(
  "troupe_callback_secrets",
  {
    tenantId: text("tenant_id").primaryKey(),
    secretSealed: text("secret_sealed").notNull(),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  // Named as PostgreSQL names the migration's inline REFERENCES.
  (t) => [
    foreignKey({
      name: "troupe_callback_secrets_tenant_id_fkey",
      columns: [t.tenantId],
      foreignColumns: [tenants.id],
    }).onDelete("cascade"),
  ],
);

/** A console session: the hash of its cookie's id, the key it acts as, its CSRF token. */
export const consoleSessions = pgTable(
  "troupe_console_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    apiKeyId: text("api_key_id").notNull(),
    csrf: text("csrf").notNull(),
    createdAt: tz("created_at").notNull().defaultNow(),
    expiresAt: tz("expires_at").notNull(),
    idleUntil: tz("idle_until").notNull(),
  },
  // Named as PostgreSQL names the migration's inline REFERENCES.
  (t) => [
    foreignKey({
      name: "troupe_console_sessions_api_key_id_fkey",
      columns: [t.apiKeyId],
      foreignColumns: [apiKeys.id],
    }).onDelete("cascade"),
    index("troupe_console_sessions_expires_idx").on(t.expiresAt),
  ],
);

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
