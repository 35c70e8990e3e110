/**
 * Job changes shared between the instances on one database (`Runtime.subscribeAll`): what a
 * console page shows live whichever instance runs the job.
 *
 * Invariants:
 * - A started instance sends the ids of the jobs that changed in it (created, progress, ended:
 *   what `Runtime.subscribe` hears) as NOTIFY payloads on the schema's job events channel, in
 *   batches: at most one round every `intervalMs`, each its own statement after the jobs' commits,
 *   so no job's transaction waits on the notification queue.
 * - A payload is a comma-separated list of at most `MAX_IDS` ids; a watcher reads each job again,
 *   so an id sent early, late or twice is harmless.
 * - A notification may be lost (a dropped connection): watchers keep a fallback of their own.
 * - The channel is listened to only while someone subscribes, on one connection per instance.
 * - Nothing is notified while no instance watches, and a watcher hears every round sent after
 *   its `watch` resolved, from any instance:
 *   - on a shared database whose driver has `listenLocks`, a watching instance holds a shared
 *     advisory lock (`watcherLock(channel)`) on its listening session, and a round is one
 *     statement that notifies only when it cannot take that lock exclusively. The check and the
 *     NOTIFY are one statement, so a watcher listening when it runs is never skipped; a watcher
 *     whose session ends (a crash) releases the lock with it. A round where nobody watches
 *     costs one SELECT and no NOTIFY (no notification queue, no commit-time queue lock);
 *   - on a database no other process shares (an embedded PGlite), every watcher is in this
 *     process: the relays on one database object count their watchers in memory, and a round
 *     where there are none runs no statement at all;
 *   - any other driver notifies every round.
 */
import type { Logger, SqlDatabase } from "./ports.ts";

/** The first key of the watchers' advisory lock (the second is the channel's hash). */
const WATCHER_LOCK_CLASS = 0x7472_6576; // "trev"

/** The advisory lock pair a watching instance holds shared on its listening session. */
export function watcherLock(channel: string): [number, number] {
  // FNV-1a over the UTF-16 code units, as a signed int4.
  let h = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) {
    h ^= channel.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return [WATCHER_LOCK_CLASS, h | 0];
}

/** Watchers listening per channel, per database object no other process shares. */
const localWatchers = new WeakMap<SqlDatabase, Map<string, number>>();

function countWatchers(db: SqlDatabase, channel: string, by: number): void {
  let m = localWatchers.get(db);
  if (!m) localWatchers.set(db, m = new Map());
  const n = (m.get(channel) ?? 0) + by;
  if (n > 0) m.set(channel, n);
  else m.delete(channel);
}

/** Ids in one NOTIFY payload (ids are under 40 characters: well inside the 8000-byte limit). */
const MAX_IDS = 150;
/** Ids waiting at most; past it the oldest changes are dropped (watchers read again anyway). */
const MAX_PENDING = 10_000;

export class JobEventRelay {
  readonly #pending = new Set<string>();
  readonly #watchers = new Set<(jobId: string) => void>();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #publishing = false;
  #listening: Promise<() => Promise<void>> | null = null;
  #stopping: Promise<void> = Promise.resolve();

  constructor(
    readonly db: SqlDatabase,
    readonly channel: string,
    readonly log: Logger,
    readonly intervalMs = 200,
  ) {}

  /** Sends this instance's changes from now on (a started runtime). */
  startPublishing(): void {
    this.#publishing = true;
  }

  /** Stops sending, after sending what is waiting. */
  async stopPublishing(): Promise<void> {
    this.#publishing = false;
    await this.flush();
  }

  /** Notes that `jobId` changed here; sent with the next batch. */
  changed(jobId: string): void {
    if (!this.#publishing) return;
    if (this.#pending.size < MAX_PENDING) this.#pending.add(jobId);
    this.#timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  /** Sends the waiting ids now (see the invariants above: to nobody, nothing is sent). */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const ids = [...this.#pending];
    this.#pending.clear();
    if (ids.length === 0) return;
    if (!this.db.shared && !localWatchers.get(this.db)?.get(this.channel)) return;
    const payloads: string[] = [];
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      payloads.push(ids.slice(i, i + MAX_IDS).join(","));
    }
    const sent = this.db.shared && this.db.listenLocks
      ? this.db.query(
        `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p
          WHERE NOT (SELECT pg_try_advisory_xact_lock($3, $4))`,
        [this.channel, payloads, ...watcherLock(this.channel)],
      )
      : this.db.query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", [
        this.channel,
        payloads,
      ]);
    await sent.catch((err) => this.log.warn("job events not sent", { error: String(err) }));
  }

  /** Calls `fn(jobId)` for each id any instance sends; resolves once listening. */
  async watch(fn: (jobId: string) => void): Promise<() => void> {
    this.#watchers.add(fn);
    this.#listening ??= this.#listen();
    try {
      await this.#listening;
    } catch (err) {
      this.#watchers.delete(fn);
      this.#listening = null;
      throw err;
    }
    return () => {
      this.#watchers.delete(fn);
      if (this.#watchers.size > 0 || !this.#listening) return;
      const listening = this.#listening;
      this.#listening = null;
      this.#stopping = listening.then((stop) => stop()).catch(() => {});
    };
  }

  /** Resolves once the listening the last unsubscribe stopped has ended (its lock released). */
  async unwatched(): Promise<void> {
    await this.#stopping;
  }

  /** Listens for this process's watchers, counted or locked as the database needs. */
  async #listen(): Promise<() => Promise<void>> {
    const { db, channel } = this;
    // Counted before listening: a round that sees the count notifies a listener soon there.
    const local = !db.shared;
    if (local) countWatchers(db, channel, 1);
    try {
      const stop = await db.listen(
        channel,
        (payload) => {
          for (const id of payload.split(",")) {
            if (id) { for (const w of this.#watchers) w(id); }
          }
        },
        db.shared && db.listenLocks ? { sharedLock: watcherLock(channel) } : {},
      );
      return async () => {
        try {
          await stop();
        } finally {
          if (local) countWatchers(db, channel, -1);
        }
      };
    } catch (err) {
      if (local) countWatchers(db, channel, -1);
      throw err;
    }
  }
}
