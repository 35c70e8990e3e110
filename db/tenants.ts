/**
 * Tenants, API keys and the audit log, over any `SqlDatabase`.
 *
 * A key is `trp_` + 32 random base62 characters (190 bits). Only its SHA-256 hash is stored;
 * the key itself is shown once, when it is created. Authentication results are kept in
 * memory for a few seconds so that a busy client costs no query per request; a revoked key
 * stops working within that time on every instance.
 *
 * A key's scope is `full` or `read` (reads only). Rotating a key makes a new one with the same
 * name, scope and admin flag; the old one keeps working for a grace period, then expires.
 */
import {
  ConflictError,
  NotFoundError,
  type SqlDatabase,
  type SqlExecutor,
  uuidv7,
  ValidationError,
} from "@troupe/runtime";
import { ConsoleSessions } from "./console_sessions.ts";

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
  /** Requests a minute allowed to each of its keys; null: the server's default. */
  rateLimitPerMinute: number | null;
}

/** Who is calling: the tenant every query is scoped to, and the key used. */
export interface Principal {
  tenantId: string;
  tenantName: string;
  apiKeyId: string;
  /**
   * An operator's key: may also see and act on what every tenant shares (global cache
   * statistics and invalidation). Its own data stays its tenant's.
   */
  admin: boolean;
  /** The tenant's per-key limit (requests a minute); null: the server's default. */
  rateLimitPerMinute: number | null;
  /** `read`: the key may only read. */
  scope: KeyScope;
}

/** The columns `principalOfRow` reads, of `troupe_api_keys k JOIN troupe_tenants t`. */
export const PRINCIPAL_COLUMNS =
  "k.id, k.tenant_id, t.name AS tenant_name, k.admin, t.rate_limit_per_minute, k.scope";

/** A principal from the `PRINCIPAL_COLUMNS` of a live key's row. */
export function principalOfRow(row: {
  id: string;
  tenant_id: string;
  tenant_name: string;
  admin: boolean;
  rate_limit_per_minute: number | null;
  scope: KeyScope;
}): Principal {
  return {
    tenantId: row.tenant_id,
    tenantName: row.tenant_name,
    apiKeyId: row.id,
    admin: row.admin === true,
    rateLimitPerMinute: row.rate_limit_per_minute ?? null,
    scope: row.scope === "read" ? "read" : "full",
  };
}

/** What a key may do: everything its tenant may, or only read. */
export type KeyScope = "full" | "read";
export const KEY_SCOPES: readonly KeyScope[] = ["full", "read"];

/** A key as listed: never the key itself. */
export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  scope: KeyScope;
  admin: boolean;
  createdAt: string;
  revokedAt: string | null;
  expiresAt: string | null;
  /** Not revoked and not expired. */
  active: boolean;
}

/** Longest grace period of a rotated key: 30 days. */
export const MAX_ROTATION_GRACE_SECONDS = 30 * 86_400;

export interface CreatedKey {
  id: string;
  /** The key itself: shown once, never stored. */
  key: string;
  prefix: string;
}

export interface AuditEntry {
  tenantId: string | null;
  apiKeyId?: string | null;
  action: string;
  targetType?: string;
  targetId?: string;
  details?: unknown;
  ip?: string | null;
  requestId?: string | null;
}

const KEY_PREFIX = "trp_";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TENANT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Keys given by an operator (DEV_API_KEY) must be at least this long. */
export const MIN_KEY_LENGTH = 24;
/** How long an authenticated key is answered from memory at most (a revocation elsewhere shows within it). */
const AUTH_CACHE_MS = 10_000;
/**
 * Once an entry is this old, a request still answered from it starts a read of the key behind it:
 * a key in use is read again before its entry ends, so its requests do not wait for the database
 * (an embedded one may be busy for a while with an ingest's statements).
 */
const AUTH_REFRESH_MS = 5_000;
const AUTH_CACHE_MAX = 10_000;

interface AuthEntry {
  principal: Principal | null;
  until: number;
  refreshAt: number;
  refreshing: boolean;
}

/** A new random API key. */
export function generateApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return KEY_PREFIX + [...bytes].map((b) => ALPHABET[b % 62]).join("");
}

/** SHA-256 hex of a key: what the database stores. */
export async function hashApiKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Options of {@linkcode TenantStore}. */
export interface TenantStoreOptions {
  /** The clock of the authentication cache, for tests. @default Date.now */
  now?: () => number;
}

export class TenantStore {
  readonly #db: SqlDatabase;
  readonly #now: () => number;
  readonly #authCache = new Map<string, AuthEntry>();
  /** Counts the cache's clears: a read started before one does not fill the cache after it. */
  #authGeneration = 0;

  /** The console's sessions, in the same database. */
  readonly consoleSessions: ConsoleSessions;

  constructor(db: SqlDatabase, { now = Date.now }: TenantStoreOptions = {}) {
    this.#db = db;
    this.#now = now;
    this.consoleSessions = new ConsoleSessions(db);
  }

  /**
   * Creates a tenant, with its own per-key rate limit when given; a taken name is a
   * `ConflictError`.
   */
  async createTenant(
    name: string,
    { rateLimitPerMinute = null }: { rateLimitPerMinute?: number | null } = {},
  ): Promise<Tenant> {
    assertTenantName(name);
    assertRateLimit(rateLimitPerMinute);
    const rows = await this.#db.query<Row>(
      `INSERT INTO troupe_tenants (id, name, rate_limit_per_minute) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING RETURNING ${TENANT_COLUMNS}`,
      [uuidv7(), name, rateLimitPerMinute],
    );
    if (!rows[0]) throw new ConflictError(`tenant "${name}" already exists`);
    return tenantView(rows[0]);
  }

  /** The tenant named `name`, created when missing. */
  async ensureTenant(name: string): Promise<Tenant> {
    assertTenantName(name);
    await this.#db.query(
      "INSERT INTO troupe_tenants (id, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
      [uuidv7(), name],
    );
    const rows = await this.#db.query<Row>(
      `SELECT ${TENANT_COLUMNS} FROM troupe_tenants WHERE name = $1`,
      [name],
    );
    return tenantView(rows[0]!);
  }

  /**
   * Sets a tenant's per-key rate limit (null: back to the server's default), recorded in the
   * audit log. Every instance applies it within the authentication cache's few seconds.
   */
  async setRateLimit(
    tenantId: string,
    rateLimitPerMinute: number | null,
    audit: Omit<AuditEntry, "action" | "tenantId"> = {},
  ): Promise<Tenant> {
    assertRateLimit(rateLimitPerMinute);
    return await this.#db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `UPDATE troupe_tenants SET rate_limit_per_minute = $2 WHERE id = $1
         RETURNING ${TENANT_COLUMNS}`,
        [tenantId, rateLimitPerMinute],
      );
      if (!rows[0]) throw new NotFoundError("tenant", tenantId);
      await insertAudit(tx, {
        ...audit,
        tenantId,
        action: "tenant.rate_limit",
        targetType: "tenant",
        targetId: tenantId,
        details: { rateLimitPerMinute },
      });
      this.#forgetAll();
      return tenantView(rows[0]);
    });
  }

  async getTenant(id: string): Promise<Tenant> {
    const rows = await this.#db.query<Row>(
      `SELECT ${TENANT_COLUMNS} FROM troupe_tenants WHERE id = $1`,
      [id],
    );
    if (!rows[0]) throw new NotFoundError("tenant", id);
    return tenantView(rows[0]);
  }

  /**
   * Creates an API key for a tenant and records it in the audit log, in one transaction.
   * With `key` (an operator-chosen key such as DEV_API_KEY) that key is stored instead of a
   * random one; storing the same key for the same tenant again changes nothing. `admin`
   * makes an operator's key ({@linkcode Principal.admin}).
   */
  async createKey(
    tenantId: string,
    { name = "default", key, admin = false, scope = "full", audit }: {
      name?: string;
      key?: string;
      admin?: boolean;
      scope?: KeyScope;
      audit?: Omit<AuditEntry, "action" | "tenantId">;
    } = {},
  ): Promise<CreatedKey> {
    if (key !== undefined && key.length < MIN_KEY_LENGTH) {
      throw new ValidationError(`an API key needs at least ${MIN_KEY_LENGTH} characters`);
    }
    assertKeyName(name);
    if (!KEY_SCOPES.includes(scope)) {
      throw new ValidationError(`a key's scope is one of ${KEY_SCOPES.join(", ")}`, { scope });
    }
    return await this.#db.transaction(async (tx) => {
      const created = await insertKey(tx, tenantId, { name, key, admin, scope });
      await insertAudit(tx, {
        ...audit,
        tenantId,
        action: "api_key.create",
        targetType: "api_key",
        targetId: created.id,
        details: {
          name,
          prefix: created.prefix,
          ...(admin ? { admin } : {}),
          ...(scope !== "full" ? { scope } : {}),
        },
      });
      return created;
    });
  }

  /** A tenant's keys, newest first, revoked and expired ones included. */
  async listKeys(tenantId: string): Promise<KeyView[]> {
    const rows = await this.#db.query<Row>(
      `SELECT ${KEY_COLUMNS} FROM troupe_api_keys WHERE tenant_id = $1 ORDER BY id DESC`,
      [tenantId],
    );
    return rows.map(keyView);
  }

  /**
   * Replaces a key: a new one with the same name, scope and admin flag, while the old one
   * keeps working for `graceSeconds` (0: stops at once), so clients can switch without a gap.
   * An expired or revoked key is not rotated (`NotFoundError`).
   */
  async rotateKey(
    tenantId: string,
    keyId: string,
    { graceSeconds = 3600, audit }: {
      graceSeconds?: number;
      audit?: Omit<AuditEntry, "action" | "tenantId">;
    } = {},
  ): Promise<CreatedKey & { replaced: KeyView }> {
    if (
      !Number.isSafeInteger(graceSeconds) || graceSeconds < 0 ||
      graceSeconds > MAX_ROTATION_GRACE_SECONDS
    ) {
      throw new ValidationError(
        `a grace period is 0 to ${MAX_ROTATION_GRACE_SECONDS} seconds`,
        { graceSeconds },
      );
    }
    return await this.#db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `UPDATE troupe_api_keys
         SET expires_at = LEAST(coalesce(expires_at, 'infinity'), now() + $3 * interval '1 second')
         WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > now())
         RETURNING ${KEY_COLUMNS}`,
        [keyId, tenantId, graceSeconds],
      );
      if (!rows[0]) throw new NotFoundError("api key", keyId);
      const old = keyView(rows[0]);
      const created = await insertKey(tx, tenantId, old);
      await insertAudit(tx, {
        ...audit,
        tenantId,
        action: "api_key.rotate",
        targetType: "api_key",
        targetId: keyId,
        details: { replacedBy: created.id, prefix: created.prefix, graceSeconds },
      });
      this.#forgetAll();
      return { ...created, replaced: old };
    });
  }

  /** Revokes a key; within a few seconds no instance accepts it. */
  async revokeKey(
    tenantId: string,
    keyId: string,
    audit: Omit<AuditEntry, "action" | "tenantId"> = {},
  ): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const rows = await tx.query(
        `UPDATE troupe_api_keys SET revoked_at = now()
         WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL RETURNING id`,
        [keyId, tenantId],
      );
      if (!rows[0]) throw new NotFoundError("api key", keyId);
      await insertAudit(tx, {
        ...audit,
        tenantId,
        action: "api_key.revoke",
        targetType: "api_key",
        targetId: keyId,
      });
    });
    this.#forgetAll();
  }

  /** Forgets every authenticated key: the next request of each is checked again. */
  forgetAuthentications(): void {
    this.#forgetAll();
  }

  /**
   * The principal of a key, or null when the key is unknown or revoked. Answered from memory
   * for up to {@link AUTH_CACHE_MS}; an entry older than {@link AUTH_REFRESH_MS} still answers
   * and starts a read of the key behind the request (see the constants).
   */
  async authenticate(key: string): Promise<Principal | null> {
    if (!key.startsWith(KEY_PREFIX) && key.length < MIN_KEY_LENGTH) return null;
    if (key.length > 200) return null;
    // Keyed by the presented key itself (held in memory only), so a hit costs no hashing.
    const cached = this.#authCache.get(key);
    const now = this.#now();
    if (cached && cached.until > now) {
      if (cached.refreshAt <= now && !cached.refreshing) {
        cached.refreshing = true;
        // A failed read leaves the entry to end at its time; the next request reads then.
        this.#readKey(key).catch(() => {
          cached.refreshing = false;
        });
      }
      return cached.principal;
    }
    return await this.#readKey(key);
  }

  /** Reads `key`'s principal from the database and caches it. */
  async #readKey(key: string): Promise<Principal | null> {
    const generation = this.#authGeneration;
    const hash = await hashApiKey(key);
    const rows = await this.#db.query<{
      id: string;
      tenant_id: string;
      tenant_name: string;
      admin: boolean;
      rate_limit_per_minute: number | null;
      scope: KeyScope;
      expires_at: unknown;
    }>(
      `SELECT ${PRINCIPAL_COLUMNS}, k.expires_at
       FROM troupe_api_keys k JOIN troupe_tenants t ON t.id = k.tenant_id
       WHERE k.hash = $1 AND k.revoked_at IS NULL
         AND (k.expires_at IS NULL OR k.expires_at > now())`,
      [hash],
    );
    const row = rows[0];
    const principal = row ? principalOfRow(row) : null;
    // Cleared while the read ran (a key revoked here): what it read may be from before.
    if (generation !== this.#authGeneration) return principal;
    if (this.#authCache.size >= AUTH_CACHE_MAX) this.#forgetAll();
    // A key that expires (a rotated one) is not remembered past its expiry.
    const expires = row?.expires_at == null
      ? Infinity
      : new Date(row.expires_at as string | Date).getTime();
    const now = this.#now();
    const until = Math.min(now + AUTH_CACHE_MS, expires);
    this.#authCache.set(key, {
      principal,
      until,
      refreshAt: Math.min(now + AUTH_REFRESH_MS, until),
      refreshing: false,
    });
    return principal;
  }

  #forgetAll(): void {
    this.#authCache.clear();
    this.#authGeneration++;
  }

  /** Appends to the audit log. */
  async audit(entry: AuditEntry): Promise<void> {
    await insertAudit(this.#db, entry);
  }

  /** Writes audit entries in `tx` (the transaction of what they record), in one statement. */
  async auditIn(tx: SqlExecutor, entries: readonly AuditEntry[]): Promise<void> {
    await insertAudits(tx, entries);
  }

  /** A tenant's audit log, newest first, with cursor pagination. */
  async listAudit(
    tenantId: string,
    { limit = 50, cursor }: { limit?: number; cursor?: string } = {},
  ): Promise<{ items: AuditView[]; nextCursor: string | null }> {
    const rows = await this.#db.query<Row>(
      `SELECT * FROM troupe_audit_log WHERE tenant_id = $1 AND ($2::text IS NULL OR id < $2)
       ORDER BY id DESC LIMIT $3`,
      [tenantId, cursor ?? null, limit + 1],
    );
    const items = rows.slice(0, limit).map(auditView);
    return { items, nextCursor: rows.length > limit ? items.at(-1)!.id : null };
  }
}

export interface AuditView {
  id: string;
  action: string;
  apiKeyId: string | null;
  targetType: string | null;
  targetId: string | null;
  details: unknown;
  ip: string | null;
  requestId: string | null;
  createdAt: string;
}

type Row = Record<string, unknown>;

const KEY_NAME = /^[\p{L}\p{N} ._:-]{1,64}$/u;

function assertKeyName(name: string): void {
  if (!KEY_NAME.test(name)) {
    throw new ValidationError(
      "a key name is 1-64 letters, digits, spaces, '.', '_', ':' or '-'",
      { name },
    );
  }
}

/** Inserts a key (random unless `key` is given); the same key for the same tenant is kept. */
async function insertKey(
  tx: SqlExecutor,
  tenantId: string,
  { name, key, admin, scope }: {
    name: string;
    key?: string | undefined;
    admin: boolean;
    scope: KeyScope;
  },
): Promise<CreatedKey> {
  const secret = key ?? generateApiKey();
  const hash = await hashApiKey(secret);
  const prefix = secret.slice(0, 12);
  const rows = await tx.query<{ id: string; tenant_id: string }>(
    `WITH ins AS (
       INSERT INTO troupe_api_keys (id, tenant_id, name, prefix, hash, admin, scope)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING RETURNING id, tenant_id)
     SELECT id, tenant_id FROM ins
     UNION ALL SELECT id, tenant_id FROM troupe_api_keys WHERE hash = $5`,
    [uuidv7(), tenantId, name, prefix, hash, admin, scope],
  );
  const row = rows[0]!;
  if (row.tenant_id !== tenantId) throw new ConflictError("this key belongs to another tenant");
  return { id: row.id, key: secret, prefix };
}

const KEY_COLUMNS =
  "id, name, prefix, scope, admin, created_at, revoked_at, expires_at, (revoked_at IS NULL " +
  "AND (expires_at IS NULL OR expires_at > now())) AS active";

function keyView(r: Row): KeyView {
  return {
    id: String(r.id),
    name: String(r.name),
    prefix: String(r.prefix),
    scope: r.scope === "read" ? "read" : "full",
    admin: r.admin === true,
    createdAt: iso(r.created_at),
    revokedAt: r.revoked_at == null ? null : iso(r.revoked_at),
    expiresAt: r.expires_at == null ? null : iso(r.expires_at),
    active: r.active === true,
  };
}

function assertTenantName(name: string): void {
  if (!TENANT_NAME.test(name)) {
    throw new ValidationError(
      "a tenant name is 1-63 characters: lower-case letters, digits, '.', '_' or '-'",
      { name },
    );
  }
}

/** Most requests a minute a tenant's keys may be given (PostgreSQL's integer). */
export const MAX_RATE_LIMIT = 2_147_483_647;

function assertRateLimit(perMinute: number | null): void {
  if (perMinute === null) return;
  if (!Number.isSafeInteger(perMinute) || perMinute < 1 || perMinute > MAX_RATE_LIMIT) {
    throw new ValidationError(
      `a rate limit is a whole number of requests a minute, 1 to ${MAX_RATE_LIMIT}`,
      { rateLimitPerMinute: perMinute },
    );
  }
}

async function insertAudit(tx: SqlExecutor, e: AuditEntry): Promise<void> {
  await tx.query(
    `INSERT INTO troupe_audit_log
       (id, tenant_id, api_key_id, action, target_type, target_id, details, ip, request_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)`,
    [
      uuidv7(),
      e.tenantId,
      e.apiKeyId ?? null,
      e.action,
      e.targetType ?? null,
      e.targetId ?? null,
      e.details === undefined ? null : JSON.stringify(e.details),
      e.ip ?? null,
      e.requestId ?? null,
    ],
  );
}

async function insertAudits(tx: SqlExecutor, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await tx.query(
    `INSERT INTO troupe_audit_log
       (id, tenant_id, api_key_id, action, target_type, target_id, details, ip, request_id)
     SELECT x.id, x.tenant_id, x.api_key_id, x.action, x.target_type, x.target_id, x.details,
       x.ip, x.request_id
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, tenant_id text, api_key_id text,
       action text, target_type text, target_id text, details jsonb, ip text, request_id text)`,
    [
      JSON.stringify(entries.map((e) => ({
        id: uuidv7(),
        tenant_id: e.tenantId,
        api_key_id: e.apiKeyId ?? null,
        action: e.action,
        target_type: e.targetType ?? null,
        target_id: e.targetId ?? null,
        details: e.details === undefined ? null : e.details,
        ip: e.ip ?? null,
        request_id: e.requestId ?? null,
      }))),
    ],
  );
}

const iso = (v: unknown) => (v instanceof Date ? v : new Date(String(v))).toISOString();

const TENANT_COLUMNS = "id, name, created_at, rate_limit_per_minute";

function tenantView(r: Row): Tenant {
  return {
    id: String(r.id),
    name: String(r.name),
    createdAt: iso(r.created_at),
    rateLimitPerMinute: r.rate_limit_per_minute == null ? null : Number(r.rate_limit_per_minute),
  };
}

function auditView(r: Row): AuditView {
  return {
    id: String(r.id),
    action: String(r.action),
    apiKeyId: (r.api_key_id as string | null) ?? null,
    targetType: (r.target_type as string | null) ?? null,
    targetId: (r.target_id as string | null) ?? null,
    details: r.details ?? null,
    ip: (r.ip as string | null) ?? null,
    requestId: (r.request_id as string | null) ?? null,
    createdAt: iso(r.created_at),
  };
}
