/**
 * Report sources: the external usage APIs a tenant connects.
 *
 * Invariants:
 * - Every read and write is scoped to a tenant: another tenant's source is a 404.
 * - The token is sealed (AES-GCM, key id in the value) bound to `usage-source:<tenant>:<id>`
 *   and never leaves in a view; a stale key's value is resealed when the source is next read
 *   for a sync.
 * - `baseUrl` passes the egress rule when written, and again on every call.
 * - `next_run_at` is the next slot of `schedule` after the last change or run.
 */
import { z } from "zod";
import {
  NotFoundError,
  parseSchedule,
  type SqlDatabase,
  type SqlExecutor,
  uuidv7,
  ValidationError,
} from "@troupe/runtime";
import { type EgressPolicy } from "../net/egress.ts";
import type { SecretBox } from "../../db/secrets.ts";

/** The default schedule: every 30 minutes. */
export const DEFAULT_SCHEDULE = "30";

const scheduleText = z.union([z.string().trim().min(1).max(120), z.number().int()])
  .transform(String)
  .superRefine((v, ctx) => {
    try {
      parseSchedule(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  });

/** The fields a source is made of (the body of `POST /sources`). */
export const SourceInput = z.object({
  name: z.string().trim().min(1).max(200),
  baseUrl: z.string().trim().min(1).max(2000),
  token: z.string().min(1).max(4096),
  pageSize: z.number().int().min(1).max(1000).default(100),
  concurrency: z.number().int().min(1).max(32).default(4),
  requestsPerMinute: z.number().int().min(1).max(100_000).default(600),
  schedule: scheduleText.default(DEFAULT_SCHEDULE),
  /** Called back when each of its syncs ends (checked by the route: `Callbacks.accept`). */
  callbackUrl: z.string().trim().min(1).max(2048).optional(),
}).strict();
export type SourceInput = z.infer<typeof SourceInput>;

/** A change (the body of `PATCH /sources/:id`). */
export const SourcePatch = z.object({
  name: z.string().trim().min(1).max(200),
  baseUrl: z.string().trim().min(1).max(2000),
  token: z.string().min(1).max(4096),
  pageSize: z.number().int().min(1).max(1000),
  concurrency: z.number().int().min(1).max(32),
  requestsPerMinute: z.number().int().min(1).max(100_000),
  schedule: scheduleText,
  /** null: no callback any more. */
  callbackUrl: z.string().trim().min(1).max(2048).nullable(),
}).partial().strict();
export type SourcePatch = z.infer<typeof SourcePatch>;

/** A source as the API shows it: never the token. */
export interface SourceView {
  id: string;
  name: string;
  baseUrl: string;
  pageSize: number;
  concurrency: number;
  requestsPerMinute: number;
  schedule: string;
  nextRunAt: string | null;
  /** The sync running now, if any. */
  currentSyncId: string | null;
  /** Called back when each of its syncs ends, or null. */
  callbackUrl: string | null;
  createdAt: string;
  updatedAt: string;
}

/** What a sync needs of a source, token opened. */
export interface SourceForSync extends SourceView {
  tenantId: string;
  token: string;
  cursor: string | null;
}

interface Row {
  id: string;
  tenant_id: string;
  name: string;
  base_url: string;
  token_sealed: string;
  page_size: number;
  concurrency: number;
  requests_per_minute: number;
  schedule: string;
  next_run_at: Date | string | null;
  cursor: string | null;
  current_sync_id: string | null;
  callback_url: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const iso = (v: Date | string) => new Date(v).toISOString();

function view(r: Row): SourceView {
  return {
    id: r.id,
    name: r.name,
    baseUrl: r.base_url,
    pageSize: r.page_size,
    concurrency: r.concurrency,
    requestsPerMinute: r.requests_per_minute,
    schedule: r.schedule,
    nextRunAt: r.next_run_at === null ? null : iso(r.next_run_at),
    currentSyncId: r.current_sync_id,
    callbackUrl: r.callback_url ?? null,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/** The AES-GCM context a source's token is bound to. */
export const tokenContext = (tenantId: string, id: string) => `usage-source:${tenantId}:${id}`;

/**
 * Sources over a database, sealing with `secrets` and checking URLs with `egress`. `secrets`
 * may be a provider, asked on first use: the embedded default makes its key file only when a
 * token is first sealed, and a deployment without keys fails only the calls that need them.
 */
export class SourceStore {
  readonly #secrets: SecretBox | (() => Promise<SecretBox>);
  #box: Promise<SecretBox> | undefined;

  constructor(
    readonly db: SqlDatabase,
    secrets: SecretBox | (() => Promise<SecretBox>),
    readonly egress: EgressPolicy,
  ) {
    this.#secrets = secrets;
  }

  /** The sealing box (asked of the provider once; a failure is asked again next time). */
  get secrets(): Promise<SecretBox> {
    if (typeof this.#secrets !== "function") return Promise.resolve(this.#secrets);
    this.#box ??= this.#secrets().catch((err) => {
      this.#box = undefined;
      throw err;
    });
    return this.#box;
  }

  async #checkUrl(baseUrl: string): Promise<string> {
    try {
      const url = await this.egress.check(baseUrl);
      return url.toString().replace(/\/+$/, "");
    } catch (err) {
      if (err instanceof Error && err.name === "EgressError") {
        throw new ValidationError(`baseUrl is not allowed: ${err.message}`, {
          field: "baseUrl",
          reason: (err as Error & { code: string }).code,
        });
      }
      throw err;
    }
  }

  async create(tenantId: string, input: SourceInput): Promise<SourceView> {
    const id = uuidv7();
    const baseUrl = await this.#checkUrl(input.baseUrl);
    const sealed = await (await this.secrets).seal(input.token, tokenContext(tenantId, id));
    const next = parseSchedule(input.schedule).next(new Date());
    const [row] = await this.db.query<Row>(
      `INSERT INTO troupe_usage_sources (id, tenant_id, name, base_url, token_sealed, page_size,
         concurrency, requests_per_minute, schedule, next_run_at, callback_url)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
      [
        id,
        tenantId,
        input.name,
        baseUrl,
        sealed,
        input.pageSize,
        input.concurrency,
        input.requestsPerMinute,
        input.schedule,
        next.toISOString(),
        input.callbackUrl ?? null,
      ],
    );
    return view(row!);
  }

  async list(tenantId: string): Promise<SourceView[]> {
    const rows = await this.db.query<Row>(
      `SELECT * FROM troupe_usage_sources WHERE tenant_id = $1 ORDER BY created_at, id`,
      [tenantId],
    );
    return rows.map(view);
  }

  async #row(tenantId: string, id: string, db: SqlExecutor = this.db): Promise<Row> {
    const [row] = await db.query<Row>(
      "SELECT * FROM troupe_usage_sources WHERE id = $1 AND tenant_id = $2",
      [id, tenantId],
    );
    if (!row) throw new NotFoundError("source", id);
    return row;
  }

  async get(tenantId: string, id: string): Promise<SourceView> {
    return view(await this.#row(tenantId, id));
  }

  async update(tenantId: string, id: string, patch: SourcePatch): Promise<SourceView> {
    const before = await this.#row(tenantId, id);
    const baseUrl = patch.baseUrl === undefined ? null : await this.#checkUrl(patch.baseUrl);
    const sealed = patch.token === undefined
      ? null
      : await (await this.secrets).seal(patch.token, tokenContext(tenantId, id));
    const next = patch.schedule === undefined || patch.schedule === before.schedule
      ? null
      : parseSchedule(patch.schedule).next(new Date()).toISOString();
    const [row] = await this.db.query<Row>(
      `UPDATE troupe_usage_sources SET
         name = coalesce($3, name), base_url = coalesce($4, base_url),
         token_sealed = coalesce($5, token_sealed), page_size = coalesce($6, page_size),
         concurrency = coalesce($7, concurrency),
         requests_per_minute = coalesce($8, requests_per_minute),
         schedule = coalesce($9, schedule), next_run_at = coalesce($10, next_run_at),
         callback_url = CASE WHEN $11 THEN $12 ELSE callback_url END,
         updated_at = now()
       WHERE id = $1 AND tenant_id = $2 RETURNING *`,
      [
        id,
        tenantId,
        patch.name ?? null,
        baseUrl,
        sealed,
        patch.pageSize ?? null,
        patch.concurrency ?? null,
        patch.requestsPerMinute ?? null,
        patch.schedule ?? null,
        next,
        patch.callbackUrl !== undefined,
        patch.callbackUrl ?? null,
      ],
    );
    if (!row) throw new NotFoundError("source", id);
    return view(row);
  }

  /** Deletes the source and its history; its usage snapshots stay (they are billed usage). */
  async delete(tenantId: string, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const gone = await tx.query(
        "DELETE FROM troupe_usage_sources WHERE id = $1 AND tenant_id = $2 RETURNING id",
        [id, tenantId],
      );
      if (gone.length === 0) throw new NotFoundError("source", id);
      await tx.query("DELETE FROM troupe_usage_syncs WHERE source_id = $1", [id]);
    });
  }

  /** The source with its token opened (resealed first when sealed with an older key). */
  async forSync(tenantId: string, id: string): Promise<SourceForSync> {
    const row = await this.#row(tenantId, id);
    const context = tokenContext(tenantId, id);
    const box = await this.secrets;
    const token = await box.open(row.token_sealed, context);
    if (box.isStale(row.token_sealed)) {
      await this.db.query(
        "UPDATE troupe_usage_sources SET token_sealed = $3 WHERE id = $1 AND token_sealed = $2",
        [id, row.token_sealed, await box.seal(token, context)],
      );
    }
    return { ...view(row), tenantId, token, cursor: row.cursor };
  }
}
