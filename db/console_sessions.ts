/**
 * Console sessions in the app's database (`troupe_console_sessions`), so that any instance resumes
 * a session another one started, and a logout on one ends it on all.
 *
 * Invariants:
 * - Only the SHA-256 of a session's id is stored: reading the table gives no cookie to replay.
 * - A session resumes only while both expiries are ahead and its key is live (not revoked, not
 *   expired): the key's state is read with the session, in one query, on every request.
 * - A deleted key (its tenant deleted) deletes its sessions (foreign key, cascade).
 */
import type { SqlDatabase } from "@troupe/runtime";
import { type KeyScope, type Principal, PRINCIPAL_COLUMNS, principalOfRow } from "./tenants.ts";

/** A stored session as `resume` reads it. */
export interface StoredSession {
  csrf: string;
  expiresAt: number;
  idleUntil: number;
  principal: Principal;
}

/** The hex SHA-256 of a session's id: the row's key. */
export async function sessionHash(id: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(id));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export class ConsoleSessions {
  constructor(readonly db: SqlDatabase) {}

  /** Stores a new session of key `apiKeyId`; ended sessions are swept at the same time. */
  async create(
    id: string,
    s: { apiKeyId: string; csrf: string; expiresAt: number; idleUntil: number; now: number },
  ): Promise<void> {
    await this.db.query(
      "DELETE FROM troupe_console_sessions WHERE expires_at <= $1 OR idle_until <= $1",
      [new Date(s.now)],
    );
    await this.db.query(
      `INSERT INTO troupe_console_sessions (id_hash, api_key_id, csrf, expires_at, idle_until)
       VALUES ($1, $2, $3, $4, $5)`,
      [await sessionHash(id), s.apiKeyId, s.csrf, new Date(s.expiresAt), new Date(s.idleUntil)],
    );
  }

  /** The live session with id `id` at time `now`, and its key's principal; or null. */
  async resume(id: string, now: number): Promise<StoredSession | null> {
    const rows = await this.db.query<{
      id: string;
      tenant_id: string;
      tenant_name: string;
      admin: boolean;
      rate_limit_per_minute: number | null;
      scope: KeyScope;
      csrf: string;
      s_expires_at: string | Date;
      idle_until: string | Date;
    }>(
      `SELECT ${PRINCIPAL_COLUMNS}, s.csrf, s.expires_at AS s_expires_at, s.idle_until
       FROM troupe_console_sessions s
         JOIN troupe_api_keys k ON k.id = s.api_key_id
         JOIN troupe_tenants t ON t.id = k.tenant_id
       WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.idle_until > $2
         AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`,
      [await sessionHash(id), new Date(now)],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      csrf: row.csrf,
      expiresAt: new Date(row.s_expires_at).getTime(),
      idleUntil: new Date(row.idle_until).getTime(),
      principal: principalOfRow(row),
    };
  }

  /** Moves a session's idle expiry to `idleUntil`. */
  async touch(id: string, idleUntil: number): Promise<void> {
    await this.db.query(
      "UPDATE troupe_console_sessions SET idle_until = $2 WHERE id_hash = $1",
      [await sessionHash(id), new Date(idleUntil)],
    );
  }

  /** Ends a session on every instance. */
  async end(id: string): Promise<void> {
    await this.db.query("DELETE FROM troupe_console_sessions WHERE id_hash = $1", [
      await sessionHash(id),
    ]);
  }

  /** Sessions stored now, ended or not. */
  async count(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM troupe_console_sessions",
    );
    return row?.n ?? 0;
  }
}
