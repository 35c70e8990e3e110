/**
 * The read side of the runtime: one job, lists of jobs and dead letters, counts for health and
 * metrics.
 *
 * Invariants:
 * - Reads of one job are batched: while a read query runs, the ids asked for meanwhile wait and
 *   go together in the next one (`WHERE id = ANY($1)`), at most `READ_BATCH_MAX` ids a query.
 *   A lone read waits for nothing; reads of one id share one result. On an embedded database
 *   one batch runs at a time (it runs on this thread), on a shared one up to
 *   `READ_BATCHES_SHARED`.
 * - Only a finished job (which no longer changes) is cached, for up to `FINISHED_TTL_MS`, at
 *   most `FINISHED_CACHE_SIZE` of them (the oldest go first). Whatever can change a finished
 *   job in this process (a reap, a give-up, a pipeline's end) calls `forget` first.
 * - A job or dead letter of another tenant is not found (404), never forbidden.
 * - On an embedded PGlite ({@link JobReader.start}), job rows read are also kept (the read
 *   model), at most `LIVE_CACHE_SIZE` of them, and answered without a query until the row
 *   changes: statement triggers on the jobs table NOTIFY the ids of the rows each statement
 *   updated or deleted (in parts of under 8000 characters; `*` for a truncate or ids over
 *   100 characters long at a part's end), at COMMIT, whatever SQL
 *   made the change; each id heard drops its row (`*`: all). PGlite delivers a commit's
 *   notifications before the committing statement's caller resumes, so a write that has
 *   returned is never answered from before it. A row is kept only when no change to it (nor
 *   `*`) was heard while its read ran: a change that committed after the read could have been
 *   heard first.
 *   So a kept row is the row as committed now; an embedded PGlite has no other writer.
 *   The first job read after `start` switches the model on (its triggers are installed then):
 *   until it listens, reads query, and only a read issued while it listens keeps its rows.
 */
import { NotFoundError, TroupeError } from "./errors.ts";
import type { SqlDatabase } from "./ports.ts";
import { getDeadLetter, listDeadLetters, retryableFailures } from "./sql/dead_letters.ts";
import { type QueueDepth, queueDepths } from "./sql/queue_depth.ts";
import { countPipelineJobs, countQueue, listJobs, readJobs } from "./sql/read_jobs.ts";
import type { Tables } from "./sql/tables.ts";
import {
  type DeadLetterView,
  deadLetterView,
  decodeCursor,
  encodeCursor,
  type JobStatus,
  type JobView,
  jobView,
  type Page,
  type Row,
  TERMINAL,
} from "./views.ts";

const FINISHED_TTL_MS = 60_000;
/** Most ids in one batched job read. */
const READ_BATCH_MAX = 500;
/** Batched job reads running at once on a shared (pooled) database. */
const READ_BATCHES_SHARED = 4;
const FINISHED_CACHE_SIZE = 10_000;
/** Most job rows the read model of an embedded PGlite keeps (the least recently read go first). */
const LIVE_CACHE_SIZE = 10_000;
/** Most characters of one notification of the read model's triggers (NOTIFY's limit: 8000 bytes). */
const NOTIFY_MAX_CHARS = 7_900;
/**
 * Characters of ids after which the triggers start the next notification: a part ends with the
 * id that crosses this, so ids up to 100 characters long never make one over the limit.
 */
const NOTIFY_PART_CHARS = 7_800;

type CachedJob = JobView & { cachedUntil: number };

/** Filters of `listJobs`. */
export interface ListJobsFilter {
  actor?: string;
  status?: JobStatus;
  tenantId?: string | null;
  /** Only the jobs of this pipeline. */
  pipelineId?: string;
  limit?: number;
  cursor?: string;
}

/** Filters of `retryableFailures`: those of `listJobs` a failed job may match. */
export interface RetryFilter {
  actor?: string;
  tenantId?: string | null;
  pipelineId?: string;
  /** At most this many. @default 100 */
  limit?: number;
}

/** A failed job a bulk retry would replay, and its dead letter. */
export interface RetryCandidate {
  jobId: string;
  deadLetterId: string;
  actor: string;
}

/** Reads jobs (see the invariants above). */
export class JobReader {
  readonly #db: SqlDatabase;
  readonly #t: Tables;
  readonly #finished = new Map<string, CachedJob>();
  /** Job reads waiting for the next batched query, by id. */
  readonly #readQueue = new Map<string, PromiseWithResolvers<CachedJob | null>>();
  #readsInFlight = 0;
  /** The read model's rows by id (insertion order: least recently read first). */
  readonly #live = new Map<string, CachedJob>();
  /** Whether the read model runs (its triggers are installed and listened to). */
  #modelled = false;
  /** Whether the read model may run: `start` was called on an embedded PGlite. */
  #wanted = false;
  /** The read model being switched on by the first read, or on (see `#switchOn`). */
  #switching: Promise<void> | null = null;
  /** Counts stops: a switch begun before a stop does not take effect after it. */
  #generation = 0;
  /**
   * Ids being read, each with whether a change to it (or `*`) was heard while its read ran:
   * such a row is not kept.
   */
  readonly #reading = new Map<string, { changed: boolean; reads: number }>();
  #unlisten: (() => Promise<void>) | null = null;

  constructor(db: SqlDatabase, tables: Tables) {
    this.#db = db;
    this.#t = tables;
  }

  /**
   * On an embedded PGlite: readies the read model (see the invariants), which the first job
   * read switches on. Until its triggers are installed and listened to, every read queries,
   * and the jobs table carries no trigger of it: a process that serves no job read pays
   * nothing for the model. Triggers an earlier start left (a database file keeps them) are
   * dropped here. Elsewhere nothing.
   */
  async start(): Promise<void> {
    if (this.#db.dialect !== "pglite" || this.#db.shared || this.#wanted) return;
    for (const sql of dropJobRowTriggers(this.#t)) await this.#db.query(sql);
    this.#wanted = true;
  }

  /** Switches the read model on, once (see `start`); a failed attempt is made again by a later read. */
  #switchOn(): void {
    if (!this.#wanted || this.#switching) return;
    const generation = this.#generation;
    this.#switching = (async () => {
      for (const sql of jobRowTriggers(this.#t, this.channel)) await this.#db.query(sql);
      const unlisten = await this.#db.listen(this.channel, (payload) => this.#changed(payload));
      if (generation !== this.#generation) return await unlisten();
      this.#unlisten = unlisten;
      this.#modelled = true;
    })().catch(() => {
      if (generation === this.#generation) this.#switching = null;
    });
  }

  /** Resolves once the read model runs (after a first read switched it on), or at once when it cannot. */
  async modelReady(): Promise<void> {
    await this.#switching;
  }

  /** Stops the read model (reads query again); its triggers stay, notifying no one. */
  async stop(): Promise<void> {
    this.#generation++;
    this.#wanted = false;
    this.#switching = null;
    this.#modelled = false;
    this.#live.clear();
    const unlisten = this.#unlisten;
    this.#unlisten = null;
    await unlisten?.();
  }

  /** The channel of the read model's triggers. */
  get channel(): string {
    const name = "troupe_job_rows";
    return this.#t.schema === "public" ? name : `${name}_${this.#t.schema}`.slice(0, 63);
  }

  /** Rows the read model keeps now. */
  get modelled(): number {
    return this.#live.size;
  }

  #changed(payload: string): void {
    if (payload === "*") {
      this.#live.clear();
      this.#finished.clear();
      for (const r of this.#reading.values()) r.changed = true;
      return;
    }
    for (const id of payload.split(",")) {
      this.#live.delete(id);
      this.#finished.delete(id);
      const r = this.#reading.get(id);
      if (r) r.changed = true;
    }
  }

  /** Drops `id` from the cache of finished jobs (it is about to change). */
  forget(id: string): void {
    this.#finished.delete(id);
    this.#live.delete(id);
  }

  /** One job, batched and cached (see the invariants above); `NotFoundError` when none. */
  async getJob(id: string, tenantId?: string | null): Promise<JobView> {
    let view: CachedJob | null | undefined = this.#finished.get(id);
    if (view && view.cachedUntil < Date.now()) {
      this.#finished.delete(id);
      view = undefined;
    }
    if (!view && !this.#modelled) this.#switchOn();
    if (!view && this.#modelled) {
      view = this.#live.get(id);
      if (view) {
        // Most recently read last: the least recently read go first.
        this.#live.delete(id);
        this.#live.set(id, view);
      }
    }
    if (!view) {
      view = await this.#readJob(id);
      if (view && TERMINAL.has(view.status)) this.#remember(view);
    }
    if (!view || (tenantId !== undefined && view.tenantId !== tenantId)) {
      throw new NotFoundError("job", id);
    }
    const { cachedUntil: _, ...job } = view;
    return job;
  }

  #readJob(id: string): Promise<CachedJob | null> {
    let waiting = this.#readQueue.get(id);
    if (!waiting) {
      waiting = Promise.withResolvers<CachedJob | null>();
      this.#readQueue.set(id, waiting);
      // An embedded database runs each query synchronously on this thread, so nothing queues
      // up while it runs: start the batch after the event loop has read pending requests.
      if (this.#db.shared) this.#drainReads();
      else if (this.#readQueue.size === 1) setTimeout(() => this.#drainReads(), 0);
    }
    return waiting.promise;
  }

  #drainReads(): void {
    const parallel = this.#db.shared ? READ_BATCHES_SHARED : 1;
    while (this.#readQueue.size > 0 && this.#readsInFlight < parallel) {
      const batch = new Map<string, PromiseWithResolvers<CachedJob | null>>();
      for (const [id, waiting] of this.#readQueue) {
        batch.set(id, waiting);
        this.#readQueue.delete(id);
        if (batch.size === READ_BATCH_MAX) break;
      }
      this.#readsInFlight++;
      const ids = [...batch.keys()];
      const reading = ids.map((id) => {
        let r = this.#reading.get(id);
        if (!r) this.#reading.set(id, r = { changed: false, reads: 0 });
        r.reads++;
        return r;
      });
      const done = () => {
        ids.forEach((id, i) => {
          if (--reading[i]!.reads === 0) this.#reading.delete(id);
        });
      };
      // Rows are kept only from reads issued while the model listens: a change between an
      // earlier read and the listen would not be heard.
      const modelled = this.#modelled;
      readJobs(this.#db, this.#t, ids)
        .then((rows) => {
          const cachedUntil = Date.now() + FINISHED_TTL_MS;
          for (const row of rows) {
            const id = String(row.id);
            const view = { ...jobView(row), cachedUntil };
            // Kept only when no change to it was heard while the read ran (see the invariants).
            if (modelled && this.#modelled && !this.#reading.get(id)?.changed) this.#keep(view);
            batch.get(id)?.resolve(view);
            batch.delete(id);
          }
          for (const waiting of batch.values()) waiting.resolve(null);
        })
        .catch((err) => {
          for (const waiting of batch.values()) waiting.reject(err);
        })
        .finally(() => {
          done();
          this.#readsInFlight--;
          this.#drainReads();
        });
    }
  }

  #keep(view: CachedJob): void {
    this.#live.delete(view.id);
    this.#live.set(view.id, view);
    if (this.#live.size > LIVE_CACHE_SIZE) this.#live.delete(this.#live.keys().next().value!);
  }

  #remember(view: CachedJob): void {
    this.#finished.delete(view.id);
    this.#finished.set(view.id, view);
    if (this.#finished.size > FINISHED_CACHE_SIZE) {
      this.#finished.delete(this.#finished.keys().next().value!);
    }
  }

  /** Jobs, newest first, by filter, one page at a time. */
  async listJobs(filter: ListJobsFilter = {}): Promise<Page<JobView>> {
    const limit = filter.limit ?? 20;
    const { cursor, limit: _, ...rest } = filter;
    const rows = await listJobs(
      this.#db,
      this.#t,
      { ...rest, ...(cursor !== undefined ? { before: decodeCursor(cursor) } : {}) },
      limit + 1,
    );
    return page(rows, limit, jobView);
  }

  /** Dead letters, newest first, one page at a time. */
  async listDeadLetters(
    filter: { actor?: string; tenantId?: string | null; limit?: number; cursor?: string } = {},
  ): Promise<Page<DeadLetterView>> {
    const limit = filter.limit ?? 20;
    const { cursor, limit: _, ...rest } = filter;
    const rows = await listDeadLetters(
      this.#db,
      this.#t,
      { ...rest, ...(cursor !== undefined ? { before: decodeCursor(cursor) } : {}) },
      limit + 1,
    );
    return page(rows, limit, deadLetterView);
  }

  /** Failed jobs by filter with a dead letter not replayed yet, oldest first (`limit`). */
  async retryableFailures(filter: RetryFilter): Promise<RetryCandidate[]> {
    const { limit = 100, ...rest } = filter;
    const rows = await retryableFailures(this.#db, this.#t, rest, limit);
    return rows.map((r) => ({ jobId: r.job_id, deadLetterId: r.dead_letter_id, actor: r.actor }));
  }

  /** A dead letter's row, visible to `tenantId` (any tenant when undefined). */
  async deadLetter(id: string, tenantId?: string | null): Promise<Row> {
    const dl = await getDeadLetter(this.#db, this.#t, id);
    if (!dl || (tenantId !== undefined && dl.tenant_id !== tenantId)) {
      throw new NotFoundError("dead letter", id);
    }
    return dl;
  }

  /** How many jobs of a pipeline are in each status. */
  async pipelineJobs(pipelineId: string): Promise<Record<JobStatus, number> & { total: number }> {
    const rows = await countPipelineJobs(this.#db, this.#t, pipelineId);
    const counts = { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0, total: 0 };
    for (const r of rows) {
      counts[r.status as JobStatus] = r.n;
      counts.total += r.n;
    }
    return counts;
  }

  /** Queued and running jobs and open dead letters; `DB_TIMEOUT` (503) past `timeoutMs`. */
  async queueCounts(
    timeoutMs: number,
  ): Promise<{ queued: number; running: number; deadLetters: number }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TroupeError("DB_TIMEOUT", "database did not answer")),
        timeoutMs,
      );
    });
    try {
      const counts = await Promise.race([countQueue(this.#db, this.#t), timeout]);
      return {
        queued: counts?.queued ?? 0,
        running: counts?.running ?? 0,
        deadLetters: counts?.dead ?? 0,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Queue depth and oldest due wait per actor, reading at most `limit` queued jobs. */
  async queueDepths(limit: number): Promise<{ actors: QueueDepth[]; capped: boolean }> {
    return await queueDepths(this.#db, this.#t, limit);
  }
}

function page<T extends { id: string }>(
  rows: Row[],
  limit: number,
  view: (r: Row) => T,
): Page<T> {
  const items = rows.slice(0, limit).map(view);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}

/** Drops the read model's triggers on the jobs table, where there are any. */
export function dropJobRowTriggers(t: Tables): string[] {
  return ["insert", "update", "delete", "truncate"].map((op) =>
    `DROP TRIGGER IF EXISTS troupe_job_rows_${op} ON ${t.jobs}`
  );
}

/**
 * The read model's statement triggers on the jobs table (idempotent): after each UPDATE or
 * DELETE, NOTIFYs on `channel` of the ids of the rows it touched (none: nothing), in
 * parts of about {@link NOTIFY_PART_CHARS} characters (a statement over many rows, a claim or a
 * commit of hundreds of jobs, names each of them: the rows it did not touch stay kept); `*` for
 * a part over {@link NOTIFY_MAX_CHARS} (ids that long) and after a TRUNCATE.
 */
export function jobRowTriggers(t: Tables, channel: string): string[] {
  const fn = t.schema === "public"
    ? "troupe_job_rows_notify"
    : `"${t.schema}".troupe_job_rows_notify`;
  const call = `EXECUTE FUNCTION ${fn}('${channel}')`;
  // The running length of the ids (with their commas) numbers the parts.
  const parts = (rows: string) =>
    `SELECT string_agg(id, ',') FROM (
       SELECT id::text AS id,
              (sum(length(id::text) + 1) OVER (ROWS UNBOUNDED PRECEDING) - 1)
                / ${NOTIFY_PART_CHARS} AS part
       FROM ${rows}) r GROUP BY part`;
  return [
    `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE ids text;
     BEGIN
       IF TG_OP = 'TRUNCATE' THEN
         PERFORM pg_notify(TG_ARGV[0], '*');
       ELSIF TG_OP = 'DELETE' THEN
         FOR ids IN ${parts("old_rows")} LOOP
           PERFORM pg_notify(TG_ARGV[0], CASE WHEN length(ids) > ${NOTIFY_MAX_CHARS} THEN '*' ELSE ids END);
         END LOOP;
       ELSE
         FOR ids IN ${parts("new_rows")} LOOP
           PERFORM pg_notify(TG_ARGV[0], CASE WHEN length(ids) > ${NOTIFY_MAX_CHARS} THEN '*' ELSE ids END);
         END LOOP;
       END IF;
       RETURN NULL;
     END $$`,
    // No row a read found can be a row inserted after it: inserts need no notice (an upsert
    // that updates a row fires the update trigger).
    `CREATE OR REPLACE TRIGGER troupe_job_rows_update AFTER UPDATE ON ${t.jobs}
     REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT ${call}`,
    `CREATE OR REPLACE TRIGGER troupe_job_rows_delete AFTER DELETE ON ${t.jobs}
     REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT ${call}`,
    `CREATE OR REPLACE TRIGGER troupe_job_rows_truncate AFTER TRUNCATE ON ${t.jobs}
     FOR EACH STATEMENT ${call}`,
  ];
}
