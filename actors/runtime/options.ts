import type { AnyActor } from "./define.ts";
import type { RuntimeObserver } from "./observer.ts";
import type { Logger, SqlDatabase } from "./ports.ts";
import type { Tracing } from "./tracing.ts";
import type { Transport } from "./transport.ts";

/** What a `Runtime` is built from. */
export interface RuntimeOptions {
  /** The database holding the runtime's tables. */
  db: SqlDatabase;
  /** The actors this process runs (names must be unique). */
  actors: readonly AnyActor[];
  /** How committed messages reach the dispatcher. */
  transport: Transport;
  /** Where the runtime logs. @default a JSON-lines logger at `info` */
  logger?: Logger;
  /** Identifies this process in leases. @default a random id */
  workerId?: string;
  /**
   * Messages in flight in this process (claimed, running or committing). @default 512 on a
   * shared database (PostgreSQL, Neon), 1024 there when every actor is `ordered: false`; 256
   * on PGlite
   */
  concurrency?: number;
  /**
   * Most jobs claimed in one query. @default 256; 512 on a shared database when every actor is
   * `ordered: false`
   */
  claimBatch?: number;
  /**
   * Each tenant's share of a claim, relative to the other tenants with queued jobs (a positive
   * number; a tenant not listed weighs 1; `""` is the group of jobs without a tenant). A claim
   * splits its batch among the tenants with due work by these weights, so one tenant's backlog
   * does not hold back another's jobs (see the runtime README). @default all equal
   */
  tenantWeights?: Readonly<Record<string, number>>;
  /**
   * How long the pull dispatcher claims no new work while foreground requests are open (see
   * {@link Runtime.foreground}), counted from the first of them; after it, it claims only
   * below `foregroundConcurrency`. @default 2000
   */
  foregroundDeferMs?: number;
  /**
   * Messages in flight while foreground requests have been open for `foregroundDeferMs`: the
   * pull dispatcher claims new work only below this. @default 1
   */
  foregroundConcurrency?: number;
  /** A key's lease lasts this long unless renewed (renewed every third of it). @default 30000 */
  leaseMs?: number;
  /**
   * Most completions committed in one transaction. @default 512; 1024 on a shared database
   * when every actor is `ordered: false`
   */
  commitBatch?: number;
  /** How often to vacuum the runtime's tables on a database without autovacuum. @default 60000 */
  maintenanceMs?: number;
  /**
   * A job that was running this many times when its process stopped (its lease lapsed and the
   * reaper took it back) is dead-lettered as `POISON_JOB` instead of being run again.
   * @default 2
   */
  maxLeaseLosses?: number;
  /**
   * Whether `start()` runs the periodic loops (lease heartbeat, reaper, outbox relay, vacuum).
   * Off, nothing runs between requests: {@link Runtime.maintenancePass}, called by a scheduler
   * (QStash schedule, `Deno.cron`), reaps, relays and fires due schedules, and a lease must
   * outlast its handler (no heartbeat renews it). @default true
   */
  backgroundTimers?: boolean;
  /**
   * How long a pushed message of a paused actor waits before it is delivered again (a new
   * message, no attempt used), so at most this long after a resume. @default 30000
   */
  pauseRecheckMs?: number;
  /** Told of each committed attempt, dead letter and heartbeat (metrics). @default none */
  observer?: RuntimeObserver;
  /**
   * The PostgreSQL schema holding the runtime's tables (lower case, `^[a-z_][a-z0-9_]{0,62}$`).
   * A table queue on another schema than `public` must be given the same one.
   * @default "public"
   */
  schema?: string;
  /**
   * Spans around enqueues and handlers: every message carries the trace context it was made in,
   * and its handler's span continues that trace (see {@link Tracing}). @default no tracing
   */
  tracing?: Tracing;
}
