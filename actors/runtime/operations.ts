/**
 * Operations: what an operator sees of the instances and does to a queue (Celery's `inspect
 * active/scheduled/stats` and a per-actor pause).
 *
 * Invariants:
 * - An instance is known by the rows it writes itself (`sql/workers.ts`): at start, on each
 *   heartbeat of a pull worker, on the deliveries a push endpoint takes (at most one write per
 *   `beatMs`; a push endpoint has no claim loop to beat), and at a clean stop. A write that
 *   fails is logged, never fails the delivery or the heartbeat it rides on.
 * - A paused actor keeps its messages: enqueues are accepted, the table queue claims none of its
 *   jobs, and a pushed delivery of one is answered without running it or using an attempt (see
 *   `Dispatcher.deliver`). Jobs already running when the pause commits run to their end. A
 *   resume wakes table queues and, on a push transport that reschedules, publishes the
 *   actor's waiting messages again at once.
 * - Delayed jobs belong to no instance until they are due and claimed (or delivered), so they
 *   are listed once for the queue, not per instance.
 */
import type { ActorPolicy } from "./define.ts";
import type { Logger, SqlDatabase } from "./ports.ts";
import { type ActorKeyRow, actorKeys, actorStats } from "./sql/actor_stats.ts";
import {
  pauseActor,
  pausedActors,
  pausedSchedules,
  type PauseRow,
  pauseSchedule,
  resumeActor,
  resumeSchedule,
  schedulePaused,
  waitingJobs,
} from "./sql/pauses.ts";
import type { Tables } from "./sql/tables.ts";
import {
  beatInstance,
  delayedJobs,
  type JobBrief,
  listInstances,
  runningJobs,
  stopInstance,
} from "./sql/workers.ts";
import type { Transport } from "./transport.ts";

/** A paused actor. */
export interface PauseView {
  /** The actor. */
  actor: string;
  /** Who paused it (free text, e.g. an API key id), or null. */
  pausedBy: string | null;
  /** When (ISO 8601). */
  pausedAt: string;
}

/** A running or delayed job, briefly. */
export interface JobBriefView {
  /** The job's id. */
  id: string;
  /** Its actor. */
  actor: string;
  /** Its key. */
  key: string;
  /** Its tenant, or null. */
  tenantId: string | null;
  /** Attempts made so far (the running one included). */
  attempts: number;
  /** Attempts allowed. */
  maxAttempts: number;
  /** When its first attempt began (ISO 8601), or null. */
  startedAt: string | null;
  /** Not run before (ISO 8601). */
  runAt: string;
}

/** A runtime instance as the operations view shows it. */
export interface InstanceView {
  /** Its id in leases (`RuntimeOptions.workerId`). */
  id: string;
  /** Its host name, or null (unknown, or hidden from a tenant key). */
  host: string | null;
  /** Its process id, or null. */
  pid: number | null;
  /** The transport's name (`table-queue`, `qstash`, ...). */
  transport: string;
  /** `pull` (claims from the table queue) or `push` (takes deliveries). */
  mode: string;
  /** The actors it runs. */
  actors: string[];
  /** Its handler slots. */
  concurrency: number;
  /** Messages in flight at its last heartbeat. */
  inFlight: number;
  /** When it started (ISO 8601). */
  startedAt: string;
  /** Its last heartbeat or delivery (ISO 8601). */
  heartbeatAt: string;
  /** Seconds since then. */
  idleSeconds: number;
  /** When it stopped cleanly (ISO 8601), or null. */
  stoppedAt: string | null;
  /** The jobs running under its leases. */
  active: JobBriefView[];
}

/** Instances, what runs on each, and the delayed jobs of the queue. */
export interface WorkersView {
  /** Instances seen within the window, the most recently seen first. */
  instances: InstanceView[];
  /**
   * Running jobs no listed instance holds: a lease given back or lapsed (the reaper takes them
   * back), or a holder not seen within the window.
   */
  unowned: JobBriefView[];
  /** Delayed jobs (a delay, a retry's backoff, a run-again-later), the soonest first. */
  scheduled: JobBriefView[];
  /** Paused actors. */
  paused: PauseView[];
  /** Whether the running or the delayed list stopped at its limit. */
  capped: boolean;
}

/** One actor's outcomes and handler durations over the window. */
export interface ActorStatsView {
  /** The actor. */
  actor: string;
  /** Jobs that succeeded in the window. */
  succeeded: number;
  /** Jobs that failed for good. */
  failed: number;
  /** Jobs cancelled. */
  cancelled: number;
  /** Successes over successes and failures (0-1; cancellations left out), or null: none. */
  successRate: number | null;
  /** Median handler duration of their last attempts, in milliseconds, or null. */
  p50Ms: number | null;
  /** 99th percentile handler duration, in milliseconds, or null. */
  p99Ms: number | null;
}

/** A key an actor leased: its state and live lease. */
export interface ActorKeyView {
  /** The key. */
  key: string;
  /** Its committed state. */
  state: unknown;
  /** Commits of its state. */
  version: number;
  /** Its fencing token (leases taken). */
  fence: number;
  /** The instance holding its lease now, or null. */
  leaseOwner: string | null;
  /** When that lease ends unless renewed (ISO 8601), or null. */
  leaseUntil: string | null;
  /** Its last change (ISO 8601). */
  updatedAt: string;
}

/** What `Operations` needs. */
export interface OperationsOptions {
  db: SqlDatabase;
  tables: Tables;
  workerId: string;
  transport: Pick<Transport, "name" | "inTransaction" | "wake" | "reschedule">;
  /** The policy of `actor`, or undefined when this runtime does not run it. */
  policy: (actor: string) => ActorPolicy | undefined;
  /** How long a paused actor's pushed delivery waits before it comes again. */
  pauseRecheckMs: number;
  actorNames: readonly string[];
  concurrency: number;
  inFlight: () => number;
  /** Least time between two writes of a push endpoint's row. */
  beatMs: number;
  log: Logger;
}

/** Jobs read per page, and publishes at a time, when a resume publishes messages again. */
const PAGE = 500;
const PARALLEL = 16;

const iso = (v: Date | string | null): string | null =>
  v === null ? null : new Date(v).toISOString();

function brief(j: JobBrief): JobBriefView {
  return {
    id: j.id,
    actor: j.actor,
    key: j.key,
    tenantId: j.tenant_id,
    attempts: Number(j.attempts),
    maxAttempts: Number(j.max_attempts),
    startedAt: iso(j.started_at),
    runAt: iso(j.run_at)!,
  };
}

const pauseView = (r: PauseRow): PauseView => ({
  actor: r.actor,
  pausedBy: r.paused_by,
  pausedAt: iso(r.paused_at)!,
});

function hostName(): string | null {
  try {
    return Deno.hostname();
  } catch {
    return null; // no --allow-sys
  }
}

/** Instance rows, pauses and operator reads (see the invariants above). */
export class Operations {
  readonly #o: OperationsOptions;
  readonly #host = hostName();
  #lastBeat = 0;
  #beating: Promise<void> | undefined;

  constructor(options: OperationsOptions) {
    this.#o = options;
  }

  /** Writes this instance's row now. */
  async beat(): Promise<void> {
    const { db, tables, workerId, transport, actorNames, concurrency } = this.#o;
    this.#lastBeat = Date.now();
    await beatInstance(db, tables, {
      id: workerId,
      host: this.#host,
      pid: Deno.pid,
      transport: transport.name,
      // Messages delivered to it (push) are the ones that go through an outbox.
      mode: transport.inTransaction.outbox ? "push" : "pull",
      actors: actorNames,
      concurrency,
      inFlight: this.#o.inFlight(),
    });
  }

  /** A delivery was taken: writes the row unless written within `beatMs`; never throws. */
  async touch(): Promise<void> {
    if (this.#beating || Date.now() - this.#lastBeat < this.#o.beatMs) return;
    this.#beating = this.beat().catch((err) =>
      this.#o.log.warn("instance heartbeat not written", { error: String(err) })
    ).finally(() => this.#beating = undefined);
    await this.#beating;
  }

  /** Marks this instance stopped; never throws. */
  async stopped(): Promise<void> {
    await stopInstance(this.#o.db, this.#o.tables, this.#o.workerId).catch((err) =>
      this.#o.log.warn("instance stop not written", { error: String(err) })
    );
  }

  /** Pauses `actor` (idempotent). */
  async pause(actor: string, by: string | null = null): Promise<PauseView> {
    return pauseView(await pauseActor(this.#o.db, this.#o.tables, actor, by));
  }

  /**
   * Resumes `actor`; returns whether it was paused. Table queues look for its jobs at once; a
   * push transport that reschedules is given their messages again (see `#republish`).
   */
  async resume(actor: string): Promise<boolean> {
    const was = await resumeActor(this.#o.db, this.#o.tables, actor);
    this.#o.transport.wake();
    if (was) await this.#republish(actor);
    return was;
  }

  /**
   * A push delivery of a paused actor's job published a new message up to `pauseRecheckMs`
   * later (`Dispatcher.deliver`); after a resume its jobs are published again now (or at their
   * `run_at`), so that they run at once. Only queued jobs due within `pauseRecheckMs` can have
   * such a late message; a later one's message is at its `run_at` already. A job published
   * twice runs once (the lease and the ledger); the late message finds it done. A publish that
   * fails is logged: that job's late message still comes. Pages of `PAGE` jobs, `PARALLEL`
   * publishes at a time.
   */
  async #republish(actor: string): Promise<void> {
    const { transport, db, tables, log } = this.#o;
    const policy = this.#o.policy(actor);
    if (!transport.reschedule || !policy) return;
    let after = "";
    let published = 0;
    let failed = 0;
    for (;;) {
      const page = await waitingJobs(db, tables, actor, this.#o.pauseRecheckMs, after, PAGE);
      for (let i = 0; i < page.length; i += PARALLEL) {
        const outcomes = await Promise.allSettled(
          page.slice(i, i + PARALLEL).map((j) =>
            transport.reschedule!({
              id: j.id,
              actor,
              key: j.key,
              runAt: new Date(Math.max(Date.now(), new Date(j.run_at).getTime())),
              policy,
              ...(j.traceparent ? { traceparent: j.traceparent } : {}),
            })
          ),
        );
        for (const o of outcomes) {
          if (o.status === "fulfilled") published++;
          else failed++;
        }
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.id;
    }
    if (failed > 0) {
      log.warn("resume: some messages not published again; they come back on their recheck", {
        actor,
        published,
        failed,
      });
    }
  }

  /** Paused actors, by name. */
  async paused(): Promise<PauseView[]> {
    return (await pausedActors(this.#o.db, this.#o.tables)).map(pauseView);
  }

  /** Pauses `actor`'s schedule (idempotent): its slots make no job until resumed. */
  async pauseSchedule(actor: string, by: string | null = null): Promise<PauseView> {
    return pauseView(await pauseSchedule(this.#o.db, this.#o.tables, actor, by));
  }

  /** Resumes `actor`'s schedule; returns whether it was paused. */
  async resumeSchedule(actor: string): Promise<boolean> {
    return await resumeSchedule(this.#o.db, this.#o.tables, actor);
  }

  /** Whether `actor`'s schedule is paused. */
  async schedulePaused(actor: string): Promise<boolean> {
    return await schedulePaused(this.#o.db, this.#o.tables, actor);
  }

  /** Paused schedules, by actor. */
  async pausedSchedules(): Promise<PauseView[]> {
    return (await pausedSchedules(this.#o.db, this.#o.tables)).map(pauseView);
  }

  /** Instances seen within `sinceSeconds`, their running jobs, and the delayed jobs. */
  async workers(
    { tenantId, sinceSeconds = 3600, limit = 200 }: {
      tenantId?: string | null | undefined;
      sinceSeconds?: number;
      limit?: number;
    } = {},
  ): Promise<WorkersView> {
    const { db, tables } = this.#o;
    const scoped = tenantId !== undefined;
    const [rows, running, delayed, paused] = await Promise.all([
      listInstances(db, tables, sinceSeconds),
      runningJobs(db, tables, { tenantId, limit }),
      delayedJobs(db, tables, { tenantId, limit }),
      this.paused(),
    ]);
    const byOwner = new Map<string, JobBriefView[]>();
    const unowned: JobBriefView[] = [];
    for (const j of running) {
      const list = j.lease_owner ? byOwner.get(j.lease_owner) : undefined;
      if (list) list.push(brief(j));
      else if (j.lease_owner && rows.some((r) => r.id === j.lease_owner)) {
        byOwner.set(j.lease_owner, [brief(j)]);
      } else unowned.push(brief(j));
    }
    return {
      instances: rows.map((r) => ({
        id: r.id,
        host: scoped ? null : r.host,
        pid: scoped ? null : r.pid,
        transport: r.transport,
        mode: r.mode,
        actors: r.actors,
        concurrency: r.concurrency,
        inFlight: r.in_flight,
        startedAt: iso(r.started_at)!,
        heartbeatAt: iso(r.heartbeat_at)!,
        idleSeconds: Math.round(Number(r.idle_seconds) * 10) / 10,
        stoppedAt: iso(r.stopped_at),
        active: byOwner.get(r.id) ?? [],
      })),
      unowned,
      scheduled: delayed.map(brief),
      paused,
      capped: running.length >= limit || delayed.length >= limit,
    };
  }

  /** Outcomes and p50/p99 handler durations per actor over the last `windowSeconds`. */
  async actorStats(
    { tenantId, windowSeconds = 3600, cap = 20_000 }: {
      tenantId?: string | null | undefined;
      windowSeconds?: number;
      cap?: number;
    } = {},
  ): Promise<{ actors: ActorStatsView[]; sampled: boolean }> {
    const { rows, sampled } = await actorStats(this.#o.db, this.#o.tables, {
      tenantId,
      windowSeconds,
      cap,
    });
    return {
      actors: rows.map((r) => {
        const finished = r.succeeded + r.failed;
        const ms = (v: number | null) => v === null ? null : Math.round(Number(v) * 10) / 10;
        return {
          actor: r.actor,
          succeeded: r.succeeded,
          failed: r.failed,
          cancelled: r.cancelled,
          successRate: finished > 0 ? r.succeeded / finished : null,
          p50Ms: ms(r.p50_ms),
          p99Ms: ms(r.p99_ms),
        };
      }),
      sampled,
    };
  }

  /** Up to `limit` keys last leased by `actor`, in key order after `after`. */
  async actorKeys(
    actor: string,
    { limit = 100, after }: { limit?: number; after?: string | undefined } = {},
  ): Promise<ActorKeyView[]> {
    const rows = await actorKeys(this.#o.db, this.#o.tables, { actor, limit, after });
    return rows.map((r: ActorKeyRow) => ({
      key: r.key,
      state: r.state,
      version: Number(r.version),
      fence: Number(r.fence),
      leaseOwner: r.lease_owner,
      leaseUntil: iso(r.lease_until),
      updatedAt: iso(r.updated_at)!,
    }));
  }
}
