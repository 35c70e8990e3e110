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
 */
import type { Logger, SqlDatabase } from "./ports.ts";

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

  /** Sends the waiting ids now. */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const ids = [...this.#pending];
    this.#pending.clear();
    for (let i = 0; i < ids.length; i += MAX_IDS) {
      const payload = ids.slice(i, i + MAX_IDS).join(",");
      await this.db.query("SELECT pg_notify($1, $2)", [this.channel, payload]).catch((err) =>
        this.log.warn("job events not sent", { error: String(err) })
      );
    }
  }

  /** Calls `fn(jobId)` for each id any instance sends; resolves once listening. */
  async watch(fn: (jobId: string) => void): Promise<() => void> {
    this.#watchers.add(fn);
    this.#listening ??= this.db.listen(this.channel, (payload) => {
      for (const id of payload.split(",")) {
        if (id) { for (const w of this.#watchers) w(id); }
      }
    });
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
      void listening.then((stop) => stop()).catch(() => {});
    };
  }
}
