/**
 * Each tenant's callback signing key: made on first use, replaced by a rotation, sealed at rest
 * with the deployment's `SECRET_KEYS` (db/secrets.ts) like a report source's token.
 *
 * Invariants:
 * - A tenant has at most one key (`troupe_callback_secrets`, one row per tenant); two first
 *   uses at once make one (insert or keep, then read).
 * - A callback is signed with the key current when it is sent: after a rotation, retries of
 *   an earlier callback carry the new key's signature.
 */
import type { SqlExecutor } from "@troupe/runtime";
import type { SecretBox } from "../../db/secrets.ts";

/** A tenant's signing key as the API shows it. */
export interface CallbackSecret {
  /** `whsec_` and 32 random bytes in hex: the HMAC-SHA256 key (the whole string). */
  secret: string;
  /** When it was made (ISO 8601). */
  createdAt: string;
}

const context = (tenantId: string) => `callback-secret:${tenantId}`;

function newSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The signing keys over a database, sealed with `secrets` (opened on first use). */
export class CallbackSecrets {
  readonly #db: SqlExecutor;
  readonly #secrets: SecretBox | (() => Promise<SecretBox>);
  #box: Promise<SecretBox> | undefined;

  constructor(db: SqlExecutor, secrets: SecretBox | (() => Promise<SecretBox>)) {
    this.#db = db;
    this.#secrets = secrets;
  }

  #boxed(): Promise<SecretBox> {
    if (typeof this.#secrets !== "function") return Promise.resolve(this.#secrets);
    this.#box ??= this.#secrets().catch((err) => {
      this.#box = undefined;
      throw err;
    });
    return this.#box;
  }

  /** The tenant's key, made when it has none. */
  async current(tenantId: string): Promise<CallbackSecret> {
    const [row] = await this.#db.query<{ secret_sealed: string; created_at: unknown }>(
      "SELECT secret_sealed, created_at FROM troupe_callback_secrets WHERE tenant_id = $1",
      [tenantId],
    );
    if (row) return await this.#open(tenantId, row);
    const box = await this.#boxed();
    await this.#db.query(
      `INSERT INTO troupe_callback_secrets (tenant_id, secret_sealed) VALUES ($1, $2)
       ON CONFLICT (tenant_id) DO NOTHING`,
      [tenantId, await box.seal(newSecret(), context(tenantId))],
    );
    return await this.current(tenantId);
  }

  /** Replaces the tenant's key with a new one and returns it. */
  async rotate(tenantId: string): Promise<CallbackSecret> {
    const box = await this.#boxed();
    const [row] = await this.#db.query<{ secret_sealed: string; created_at: unknown }>(
      `INSERT INTO troupe_callback_secrets (tenant_id, secret_sealed) VALUES ($1, $2)
       ON CONFLICT (tenant_id) DO UPDATE SET secret_sealed = excluded.secret_sealed,
         created_at = now()
       RETURNING secret_sealed, created_at`,
      [tenantId, await box.seal(newSecret(), context(tenantId))],
    );
    return await this.#open(tenantId, row!);
  }

  async #open(
    tenantId: string,
    row: { secret_sealed: string; created_at: unknown },
  ): Promise<CallbackSecret> {
    const secret = await (await this.#boxed()).open(row.secret_sealed, context(tenantId));
    const at = row.created_at instanceof Date ? row.created_at : new Date(String(row.created_at));
    return { secret, createdAt: at.toISOString() };
  }
}
