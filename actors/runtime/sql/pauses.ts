import type { SqlExecutor } from "../ports.ts";
import type { Tables } from "./tables.ts";

/** A paused actor. */
export interface PauseRow {
  actor: string;
  paused_by: string | null;
  paused_at: Date | string;
}

/** Pauses `actor` (idempotent: a second pause keeps the first one's time and author). */
export async function pauseActor(
  db: SqlExecutor,
  t: Tables,
  actor: string,
  by: string | null,
): Promise<PauseRow> {
  const rows = await db.query<PauseRow>(
    `WITH ins AS (
       INSERT INTO ${t.pauses} (actor, paused_by) VALUES ($1, $2)
       ON CONFLICT (actor) DO NOTHING RETURNING actor, paused_by, paused_at)
     SELECT * FROM ins
     UNION ALL
     SELECT actor, paused_by, paused_at FROM ${t.pauses} WHERE actor = $1`,
    [actor, by],
  );
  // A concurrent first pause committed after this statement's snapshot: read it now.
  return rows[0] ??
    (await db.query<PauseRow>(
      `SELECT actor, paused_by, paused_at FROM ${t.pauses} WHERE actor = $1`,
      [actor],
    ))[0]!;
}

/**
 * Resumes `actor`; returns whether it was paused. The jobs channel is notified in the same
 * statement, so that every table queue listening looks for the actor's jobs at once.
 */
export async function resumeActor(db: SqlExecutor, t: Tables, actor: string): Promise<boolean> {
  const rows = await db.query<{ actor: string }>(
    `WITH del AS (DELETE FROM ${t.pauses} WHERE actor = $1 RETURNING actor)
     SELECT actor, (SELECT pg_notify('${t.jobsChannel}', '')) AS n FROM del`,
    [actor],
  );
  return rows.length > 0;
}

/** A queued job a resume publishes again (see `Operations.resume`). */
export interface WaitingJob {
  id: string;
  key: string;
  run_at: Date | string;
  traceparent: string | null;
}

/**
 * Up to `limit` queued jobs of `actor` due within `withinMs`, by id after `after` (a page; `""`
 * for the first): those whose message a pause may have put off.
 */
export async function waitingJobs(
  db: SqlExecutor,
  t: Tables,
  actor: string,
  withinMs: number,
  after: string,
  limit: number,
): Promise<WaitingJob[]> {
  return await db.query<WaitingJob>(
    `SELECT id, key, run_at, traceparent FROM ${t.jobs}
      WHERE status = 'queued' AND actor = $1 AND id > $2
        AND run_at <= now() + make_interval(secs => $3::float8 / 1000.0)
      ORDER BY id LIMIT $4`,
    [actor, after, withinMs, limit],
  );
}

/** Every paused actor, by name. */
export async function pausedActors(db: SqlExecutor, t: Tables): Promise<PauseRow[]> {
  return await db.query<PauseRow>(
    `SELECT actor, paused_by, paused_at FROM ${t.pauses} ORDER BY actor`,
  );
}

/** Pauses `actor`'s schedule (idempotent: a second pause keeps the first one's time and author). */
export async function pauseSchedule(
  db: SqlExecutor,
  t: Tables,
  actor: string,
  by: string | null,
): Promise<PauseRow> {
  const rows = await db.query<PauseRow>(
    `INSERT INTO ${t.schedulePauses} (actor, paused_by) VALUES ($1, $2)
     ON CONFLICT (actor) DO UPDATE SET actor = EXCLUDED.actor
     RETURNING actor, paused_by, paused_at`,
    [actor, by],
  );
  return rows[0]!;
}

/** Resumes `actor`'s schedule; returns whether it was paused. */
export async function resumeSchedule(db: SqlExecutor, t: Tables, actor: string): Promise<boolean> {
  const rows = await db.query(
    `DELETE FROM ${t.schedulePauses} WHERE actor = $1 RETURNING actor`,
    [actor],
  );
  return rows.length > 0;
}

/** Every paused schedule, by actor. */
export async function pausedSchedules(db: SqlExecutor, t: Tables): Promise<PauseRow[]> {
  return await db.query<PauseRow>(
    `SELECT actor, paused_by, paused_at FROM ${t.schedulePauses} ORDER BY actor`,
  );
}

/** Whether `actor`'s schedule is paused. */
export async function schedulePaused(db: SqlExecutor, t: Tables, actor: string): Promise<boolean> {
  const rows = await db.query(`SELECT 1 FROM ${t.schedulePauses} WHERE actor = $1`, [actor]);
  return rows.length > 0;
}
