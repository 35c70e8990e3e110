import type { ErrorRecord } from "../errors.ts";
import { endParts, type PartEnd } from "../groups.ts";
import { uuidv7 } from "../ids.ts";
import type { SqlExecutor } from "../ports.ts";
import { endMessageId } from "../job_end.ts";
import { insertJobs, type MessageWrites, type NewJob, type QueuedMessage } from "./insert_jobs.ts";
import { outboxed } from "./outbox.ts";
import { type DeclaredRow, insertRows } from "./insert_rows.ts";
import { LEASE_KEY, LOCK_LEASES } from "./claim_jobs.ts";
import { PREPARED, type Tables } from "./tables.ts";
import {
  type AbortHook,
  applyOps,
  dropEnded,
  type JobEnd,
  type LockedPipeline,
  lockPipelines,
  type PipelineOp,
  rollUp,
} from "./pipelines.ts";

/** The end of one attempt, to be committed. */
export interface Completion {
  id: string;
  key: string;
  fence: number;
  outcome: "succeeded" | "retry" | "failed" | "cancelled";
  /** The new state, when the handler changed it (successes only). */
  state?: { value: unknown };
  result?: unknown;
  error?: ErrorRecord;
  /** Delay before the retry (outcome `retry`). */
  retryInMs?: number;
  /** A retry that gives its attempt back (`RetryLaterError`). */
  refund?: boolean;
  sends: NewJob[];
  effects: ((tx: SqlExecutor) => Promise<void>)[];
  /** The rows declared with `ctx.insert()` (successes only), written before the effects. */
  rows?: DeclaredRow[];
  /** Give the key's lease back after this commit. */
  release: boolean;
  /**
   * A success writes its ledger row (the default). A message that also lives outside the
   * database (a push transport's copy, a caller of `deliver`) may come back after its job row
   * is gone, and its ledger row answers it `duplicate`. A pulled message's only copy is its job
   * row, whose fencing check already refuses a second commit: the pull path writes none.
   */
  ledger?: boolean;
  /**
   * A success deletes its job row in its commit when this is false (the actor's
   * `keepSucceeded`). Never false for a job of a pipeline or a group, or one that carries an end
   * message: those rows are read (roll-ups) or fire a trigger when they end.
   */
  keep?: boolean;
  /** A final failure writes a dead letter unless this is false (bad input: no replay). */
  deadLetter?: boolean;
  /** The pipeline the job belongs to (see `pipelines.ts`). */
  pipelineId?: string | null;
  /** The workload's pipeline calls (successes only). */
  pipeline?: PipelineOp;
  /** The group the job is a part of (see `../groups.ts`). */
  groupId?: string | null;
  /** How long its handler ran, in milliseconds (kept on the job as `run_ms`). */
  runMs?: number;
  /**
   * The job was claimed under the instance lease (its actor is declared `ordered: false`): it
   * is a chain of its own, and its commit writes no lease row; the job row's fencing token and
   * owner are its check.
   */
  unordered?: boolean;
}

/**
 * The chain a completion belongs to: the jobs of one key run under one lease (`fence`), each
 * on the state the previous one left. The one notion of a chain the committer, the dispatcher
 * and `completeJobs` share.
 */
export function chainOf(key: string, fence: number): string {
  return `${key}\u0000${fence}`;
}

/**
 * The chain of `c`: its key's under its lease, or for an unordered job the job itself (see
 * `Completion.unordered`; `chainKey` names it for a claimed job too).
 */
export function chainOfCompletion(c: Pick<Completion, "id" | "key" | "fence" | "unordered">) {
  return chainOf(chainKey(c), c.fence);
}

/** What a chain is named by (see `chainOf`): the key, or for an unordered job its id. */
export function chainKey(c: { id: string; key: string; unordered?: boolean | undefined }): string {
  return c.unordered ? c.id : c.key;
}

/** What became of a completion. */
export type CommitResult =
  | "committed"
  /** The message had been committed before (ledger): its effects were skipped. */
  | "duplicate"
  /** The lease was lost (fencing token moved on): nothing was written. */
  | "fenced"
  /**
   * An earlier message of the same key in this chain did not commit as computed, so this one
   * ran on a state that never existed: nothing was written; run it again.
   */
  | "stale";

/**
 * Commits completions in one transaction, in this order: the rows of their pipelines locked,
 * the fencing check, ledger, state updates, lease releases, job rows and dead letters (one
 * statement when every completion is valid, `commitAll`; else the checks first, then the
 * writes, `commitChecked`), the workload's pipeline calls, outgoing messages (none into a
 * pipeline that has ended), effects, the pipelines' roll-up. A completion that fails the
 * fencing check writes nothing; a success already in the ledger writes only its job row.
 *
 * Several completions of one key may come in one call, in the order their handlers ran (each
 * on the state the previous one left): once one of them does not commit as computed, the
 * later ones of its chain (`chainOf`) are `stale`.
 */
export async function completeJobs(
  tx: SqlExecutor,
  t: Tables,
  workerId: string,
  completions: readonly Completion[],
  { writes, hook, allValid = "savepoint" }: {
    writes: MessageWrites;
    hook: AbortHook;
    /**
     * The one-statement commit (`commitAll`) and what follows a completion it finds invalid:
     * `savepoint`, back to a savepoint taken before it, then `commitChecked`; `throw`, a
     * `CommitMismatch` (nothing after it runs: the caller rolls the transaction back and
     * commits again with `off`, a round trip fewer than the savepoint when all are valid);
     * `off`, `commitChecked` only.
     * @default "savepoint"
     */
    allValid?: "savepoint" | "throw" | "off";
  },
): Promise<{ results: CommitResult[]; sent: QueuedMessage[]; cancelled: string[] }> {
  // Pipelines first: every writer of a pipeline's jobs locks its row before theirs.
  let plain = true;
  for (const c of completions) if (c.pipelineId || c.groupId) plain = false;
  const pipelines = plain
    ? new Map<string, LockedPipeline>()
    : await lockPipelines(tx, t, completions.map((c) => c.pipelineId));
  const endingPipelines = [...pipelines.values()].filter((p) => p.ends && p.status === "running");
  const { results, withEnd } = allValid !== "off" && plain
    ? await commitAll(tx, t, workerId, completions, allValid) ??
      await commitChecked(tx, t, workerId, completions)
    : await commitChecked(tx, t, workerId, completions);
  // What each committed completion brings, in completion order: the workload's pipeline
  // calls and its effects (successes), what it sent (successes send what the handler sent;
  // final failures what `onDeadLetter` asked for: a failure commits once too, the job row's
  // fence check refuses a second commit), the end of a group's part (a committed end, never
  // a duplicate: counted once) and of a pipeline's job.
  const ops: { pipelineId: string; op: PipelineOp }[] = [];
  const applied: Completion[] = [];
  let sends: NewJob[] = [];
  const partEnds: PartEnd[] = [];
  const ends: JobEnd[] = [];
  for (let i = 0; i < completions.length; i++) {
    const c = completions[i]!;
    const result = results[i];
    const committed = result === "committed";
    const applies = committed && c.outcome === "succeeded";
    if (applies) {
      applied.push(c);
      if (c.pipeline && c.pipelineId) ops.push({ pipelineId: c.pipelineId, op: c.pipeline });
    }
    if ((applies || (committed && c.outcome === "failed")) && c.sends.length > 0) {
      sends = sends.length === 0 ? c.sends : sends.concat(c.sends);
    }
    if (c.groupId && c.outcome !== "retry" && committed) {
      partEnds.push({ jobId: c.id, groupId: c.groupId, status: c.outcome, error: c.error ?? null });
    }
    if (c.pipelineId && c.outcome !== "retry" && (committed || result === "duplicate")) {
      ends.push({
        pipelineId: c.pipelineId,
        status: c.outcome as JobEnd["status"],
        error: c.error ?? null,
        // A part of a group is handled by the group's continuation.
        handled: c.outcome === "failed" && (c.sends.length > 0 || !!c.groupId),
      });
    }
  }
  // The workload's pipeline calls, then what was sent: into a pipeline still running only.
  const opsDone = ops.length > 0
    ? await applyOps(tx, t, pipelines, ops, hook, { writes })
    : { sent: [], cancelled: [] };
  const kept = plain ? sends : dropEnded(sends, pipelines);
  const sent = await insertJobs(tx, t, kept, writes);
  const rows: DeclaredRow[] = [];
  for (const c of applied) if (c.rows) rows.push(...c.rows);
  if (rows.length > 0) await insertRows(tx, rows);
  for (const c of applied) {
    for (const effect of c.effects) await effect(tx);
  }
  const fannedIn = await endParts(tx, t, partEnds, {
    writes,
    keep: (job) => dropEnded([job], pipelines).length > 0,
  });
  // Pipelines that got a new job here have one open (a send whose id existed is no proof).
  // A continuation sent here is not in it: the roll-up's query finds it open.
  const open = new Set<string>();
  if (!plain) {
    const inserted = new Set(sent.map((m) => m.id));
    for (const s of kept) if (s.pipelineId && inserted.has(s.id)) open.add(s.pipelineId);
  }
  const rolled = ends.length > 0
    ? await rollUp(tx, t, pipelines, ends, hook, { writes, open })
    : { sent: [], cancelled: [] };
  // End messages the trigger inserted (see `../job_end.ts`): with the outbox, published after
  // this commit like the rest. Each of these rows was running when locked here, so an end
  // message of theirs was made by this transaction.
  const endSent = writes.outbox
    ? await outboxed(tx, t, [
      ...completions.filter((c, i) =>
        results[i] === "committed" && c.outcome !== "retry" && withEnd.has(c.id)
      ).map((c) => endMessageId(c.id)),
      ...endingPipelines.filter((p) => p.status !== "running").map((p) => endMessageId(p.id)),
    ])
    : [];
  return {
    results,
    sent: [...opsDone.sent, ...sent, ...fannedIn, ...rolled.sent, ...endSent],
    cancelled: [...opsDone.cancelled, ...rolled.cancelled],
  };
}

/**
 * The one-statement commit found a completion fenced or a duplicate (`allValid: "throw"`):
 * the transaction must be rolled back and committed again through the checks.
 */
export class CommitMismatch extends Error {
  constructor() {
    super("a completion is fenced or a duplicate: commit again with the checks");
    this.name = "CommitMismatch";
  }
}

/** What the checks of a commit decided, and the jobs whose end message the trigger made. */
interface Checked {
  results: CommitResult[];
  /** Jobs carrying an end message (`on_end`) that this commit moved to a final status. */
  withEnd: Set<string>;
}

/** The row each job gets: its status after this attempt, result, error, dead letter. */
function jobRow(c: Completion) {
  return {
    id: c.id,
    fence: c.fence,
    status: c.outcome === "retry" ? "queued" : c.outcome,
    result: c.outcome === "succeeded" ? c.result ?? null : null,
    error: c.error ?? null,
    delay_ms: c.retryInMs ?? 0,
    refund: c.refund === true,
    dead_letter_id: c.outcome === "failed" && c.deadLetter !== false ? uuidv7() : null,
    run_ms: c.runMs ?? null,
    ledger: ledgered(c),
  };
}

/** A success whose job row its commit deletes (see `Completion.keep`). */
function dropped(c: Completion): boolean {
  return c.outcome === "succeeded" && c.keep === false;
}

/** The job rows of `completions`: those updated, and those deleted (see `Completion.keep`). */
function jobRows(completions: readonly Completion[]) {
  const kept: ReturnType<typeof jobRow>[] = [];
  const gone: ReturnType<typeof jobRow>[] = [];
  for (const c of completions) (dropped(c) ? gone : kept).push(jobRow(c));
  return { kept, gone };
}

/** A success that writes its ledger row (see `Completion.ledger`). */
function ledgered(c: Completion): boolean {
  return c.outcome === "succeeded" && c.ledger !== false;
}

/** The row of a chain in a commit. */
interface ChainRow {
  key: string;
  fence: number;
  set_state: boolean;
  state: unknown;
  release: boolean;
}

/**
 * One row per chain (key and lease), in the order the chains first appear: the last state its
 * applied links left, the release.
 */
function chainRows(
  completions: readonly Completion[],
  take: (i: number) => boolean,
  applied: (i: number) => boolean,
): ChainRow[] {
  const rows: ChainRow[] = [];
  // The last chain seen of each key (a key has one lease in a batch but for a rare takeover).
  const byKey = new Map<string, ChainRow>();
  for (let i = 0; i < completions.length; i++) {
    if (!take(i) || completions[i]!.unordered) continue;
    const c = completions[i]!;
    let row = byKey.get(c.key);
    if (row && row.fence !== c.fence) {
      row = rows.find((r) => r.key === c.key && r.fence === c.fence);
    }
    if (!row) {
      row = { key: c.key, fence: c.fence, set_state: false, state: null, release: false };
      rows.push(row);
    }
    byKey.set(c.key, row);
    if (applied(i) && c.state !== undefined) {
      row.set_state = true;
      row.state = c.state.value ?? null;
    }
    if (c.release) row.release = true;
  }
  return rows;
}

/**
 * The job rows' writes, shared by both commit paths, as the CTE `upd` (one row per job
 * written): the rows of `x` updated to their status after the attempt; with `gone` (the
 * record set of the successes that are not kept, `xd`, as its parameter), those rows deleted.
 * Each record set is read once in the statement: one read twice would be materialized, and the
 * planner then joined the job rows to it the other way round (the rows of the table scanned, and
 * the record set once each).
 * `where(alias)` finds the row of the record `alias`.
 */
const JOB_WRITES = (t: Tables, where: (alias: string) => string, gone?: string) => {
  const returning = (a: string) =>
    `j.id, j.actor, j.key, j.tenant_id, j.input, j.input_version, j.attempts, ${a}.status,
     ${a}.error::jsonb AS error, ${a}.dead_letter_id, ${a}.ledger, j.on_end IS NOT NULL AS ends`;
  const kept = `UPDATE ${t.jobs} j SET status = x.status, result = x.result::jsonb,
     attempts = j.attempts - CASE WHEN x.refund THEN 1 ELSE 0 END,
     error = coalesce(x.error::jsonb, j.error),
     progress = CASE WHEN x.status = 'succeeded' THEN 100 ELSE j.progress END,
     progress_message = CASE WHEN x.status = 'succeeded' THEN NULL ELSE j.progress_message END,
     run_at = CASE WHEN x.status = 'queued'
       THEN now() + make_interval(secs => x.delay_ms / 1000.0) ELSE j.run_at END,
     finished_at = CASE WHEN x.status = 'queued' THEN NULL ELSE now() END,
     run_ms = coalesce(x.run_ms, j.run_ms), lease_owner = NULL, updated_at = now()
   FROM x WHERE ${where("x")}
   RETURNING ${returning("x")}`;
  if (!gone) return `upd AS (${kept})`;
  return `kept AS (${kept}
     ), gone AS (
       DELETE FROM ${t.jobs} j
       USING json_to_recordset(${gone}::json) AS ${X_COLUMNS("xd")}
       WHERE ${where("xd")}
       RETURNING ${returning("xd")}
     ), upd AS (SELECT * FROM kept UNION ALL SELECT * FROM gone)`;
};

/** The update of the lease rows (`y`: state to set, lease to release), shared by both paths. */
const STATE_UPDATE = (t: Tables) =>
  `UPDATE ${t.actorState} s SET
     state = CASE WHEN y.set_state THEN y.state::jsonb ELSE s.state END,
     version = s.version + CASE WHEN y.set_state THEN 1 ELSE 0 END,
     lease_owner = CASE WHEN y.release THEN NULL ELSE s.lease_owner END,
     lease_until = CASE WHEN y.release THEN NULL ELSE s.lease_until END,
     updated_at = now()`;

/**
 * The column list of a record set of job rows (`jobRow`) named `alias`. Its JSON values are
 * `json`, cast to `jsonb` where they are written: `json_to_recordset` makes a `jsonb` column of
 * its records several times slower than the cast of a `json` one (2.3 µs against 0.3 µs a
 * row for a small object, measured in bench/README); the same holds for the `state` of lease rows.
 */
const X_COLUMNS = (alias: string) =>
  `${alias}(id text, fence int, status text, result json, error json, delay_ms float8,
  dead_letter_id text, refund boolean, run_ms int, ledger boolean)`;

const DEAD_LETTERS = (t: Tables) =>
  `INSERT INTO ${t.deadLetters} (id, job_id, actor, key, tenant_id, input, input_version, error,
     attempts)
   SELECT dead_letter_id, id, actor, key, tenant_id, input, input_version, error, attempts
   FROM upd WHERE dead_letter_id IS NOT NULL`;

/**
 * The commit when every completion is valid, which is the common case: one statement writes
 * the job rows (each only if still running under its fencing token), then the lease rows
 * (each only if this worker still holds it under that token: state, release), the ledger rows
 * of the successes that write one (`Completion.ledger`) and the dead letters, and counts what
 * it wrote. The job rows go first, as in `commitChecked`: a claim holding a requeued job row
 * never waits on a lease this holds.
 * The lease rows are locked before they are updated, in the keys' byte order (`LOCK_LEASES`): a
 * commit that updated a later key first could wait on a claim for an earlier key while the claim
 * waits on it (a deadlock, seen with four instances on one database).
 * Fewer rows than completions or chains means a completion was fenced; a ledger row there
 * already (a duplicate) fails the statement on the ledger's primary key. Either way the
 * statement is rolled back (a savepoint) and null returned, for `commitChecked` to sort out,
 * or `CommitMismatch` thrown (`onMismatch`). A job row is locked by its update, where
 * `commitChecked` locks it first (`FOR UPDATE`, a write of its own) and updates it after.
 * Completions of pipelines and groups always go through `commitChecked`.
 */
async function commitAll(
  tx: SqlExecutor,
  t: Tables,
  workerId: string,
  completions: readonly Completion[],
  onMismatch: "savepoint" | "throw",
): Promise<Checked | null> {
  if (completions.every(bareDrop)) {
    return await commitDrops(tx, t, workerId, completions, onMismatch);
  }
  const chains = chainRows(completions, () => true, (i) => completions[i]!.outcome === "succeeded");
  const { kept, gone } = jobRows(inKeyOrder(completions));
  const ledgerRows = completions.filter(ledgered).length;
  // Before the savepoint: a rollback to it keeps the setting.
  const was = (await tx.query<{ was: string }>(NO_BITMAP_SCANS, [], PREPARED))[0]!.was;
  // The handlers' effects run in this transaction with the planner as they found it.
  const restore = async () => {
    if (was !== "off" && completions.some((c) => c.effects.length > 0)) {
      await tx.query("SELECT set_config('enable_bitmapscan', $1, true)", [was]);
    }
  };
  if (onMismatch === "savepoint") await tx.query("SAVEPOINT troupe_commit");
  const mismatch = async () => {
    if (onMismatch === "throw") throw new CommitMismatch();
    await tx.query("ROLLBACK TO SAVEPOINT troupe_commit");
    await restore();
    return null;
  };
  let done: { jobs: number; leases: number; ledgered: number; ends: string[] } | undefined;
  try {
    [done] = await tx.query<{ jobs: number; leases: number; ledgered: number; ends: string[] }>(
      COMMIT_ALL(t, gone.length > 0),
      [
        JSON.stringify(kept),
        JSON.stringify(chains),
        workerId,
        completions.length,
        [...new Set(chains.map((c) => c.key))],
        ...(gone.length > 0 ? [JSON.stringify(gone)] : []),
      ],
      PREPARED,
    );
  } catch (err) {
    // A ledger row there already (a duplicate): the only unique key this statement writes.
    if ((err as { code?: unknown }).code === UNIQUE_VIOLATION) return await mismatch();
    throw err;
  }
  if (
    done!.jobs !== completions.length || done!.leases !== chains.length ||
    done!.ledgered !== ledgerRows
  ) {
    return await mismatch();
  }
  await restore();
  return { results: completions.map(() => "committed"), withEnd: new Set(done!.ends) };
}

/**
 * `completions` in key order: keyed jobs' job rows are written in the order `commitChecked`
 * locks them in (by lease key; JavaScript compares UTF-16 units where that order compares bytes,
 * the same for keys below U+D800).
 */
function inKeyOrder(completions: readonly Completion[]): Completion[] {
  return [...completions].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/**
 * A success whose commit is the deletion of its job row and nothing else: an unordered job (no
 * lease row), not kept, without a ledger row (see `Completion.ledger`).
 */
function bareDrop(c: Completion): boolean {
  return dropped(c) && c.unordered === true && !ledgered(c);
}

/**
 * `commitAll` when every completion is a `bareDrop`: one statement deletes the job rows, each
 * only if still running under its fencing token and owner, found by primary key from two
 * arrays (ids, tokens) rather than a record set of every column; fewer rows deleted than
 * completions is a mismatch, as in `commitAll`.
 */
async function commitDrops(
  tx: SqlExecutor,
  t: Tables,
  workerId: string,
  completions: readonly Completion[],
  onMismatch: "savepoint" | "throw",
): Promise<Checked | null> {
  const rows = inKeyOrder(completions);
  if (onMismatch === "savepoint") await tx.query("SAVEPOINT troupe_commit");
  const [done] = await tx.query<{ jobs: number; ends: string[] }>(
    COMMIT_DROPS(t),
    [rows.map((c) => c.id), rows.map((c) => c.fence), workerId],
    PREPARED,
  );
  if (done!.jobs !== completions.length) {
    if (onMismatch === "throw") throw new CommitMismatch();
    await tx.query("ROLLBACK TO SAVEPOINT troupe_commit");
    return null;
  }
  return { results: completions.map(() => "committed"), withEnd: new Set(done!.ends) };
}

/**
 * The job row `j` of record `x`, still running under the record's fencing token: the check of
 * both one-statement commits, with this worker's id as `$3`. An unordered job's token is its
 * process's instance lease's: the owner tells two apart.
 */
const STILL_RUNNING = (x: string) =>
  `j.id = ${x}.id AND j.status = 'running' AND j.lease_fence = ${x}.fence
   AND (NOT j.unordered OR j.lease_owner = $3)`;

/** The statement of `commitDrops`. */
const COMMIT_DROPS = (t: Tables) =>
  `WITH gone AS (
     DELETE FROM ${t.jobs} j USING unnest($1::text[], $2::int[]) AS x(id, fence)
     WHERE ${STILL_RUNNING("x")}
     RETURNING j.id, j.on_end IS NOT NULL AS ends)
   SELECT count(*)::int AS jobs, coalesce(array_agg(id) FILTER (WHERE ends), '{}') AS ends
   FROM gone`;

/**
 * Bitmap scans off until the transaction ends (and the setting as it was). The commit finds
 * its job rows through `troupe_jobs_status_idx` (`status = 'running'`, a few hundred live rows);
 * a bitmap scan never marks an index entry dead, so it visits the entry of every row that ever
 * ran since the last vacuum (20,000 entries and 800 heap pages for a commit of 18 rows late in
 * a run of 20,000 messages), where an index scan marks them and passes over them from then on.
 */
const NO_BITMAP_SCANS = `SELECT current_setting('enable_bitmapscan') AS was,
  set_config('enable_bitmapscan', 'off', true)`;

/** SQLSTATE of a unique violation. */
const UNIQUE_VIOLATION = "23505";

/**
 * The statement of `commitAll`. The ledger rows are a plain insert (no `ON CONFLICT`: no
 * speculative insertion, a lookup and a WAL record fewer a row): a success committed before
 * fails the statement on the ledger's primary key.
 */
const COMMIT_ALL = (t: Tables, dropping: boolean) =>
  `WITH x AS (
       SELECT * FROM json_to_recordset($1::json) AS ${X_COLUMNS("x")}
     ), ${JOB_WRITES(t, STILL_RUNNING, dropping ? "$6" : undefined)},
     lk AS MATERIALIZED (
       -- the job rows first, and all of them
       ${LOCK_LEASES(t, "$5::text[]", "(SELECT count(*) FROM upd) = $4")}
     ), st AS (
       ${STATE_UPDATE(t)}
       FROM json_to_recordset($2::json) AS y(key text, fence int, set_state boolean,
         state json, release boolean)
       WHERE s.key = y.key AND s.fence = y.fence AND s.lease_owner = $3
         AND s.key IN (SELECT key FROM lk)
       RETURNING s.key
     ), ledger AS (
       INSERT INTO ${t.processed} (message_id)
       SELECT id FROM upd WHERE ledger
       RETURNING message_id
     ), dead AS (
       ${DEAD_LETTERS(t)}
       RETURNING 1
     )
     SELECT (SELECT count(*)::int FROM upd) AS jobs, (SELECT count(*)::int FROM st) AS leases,
       (SELECT count(*)::int FROM ledger) AS ledgered,
       (SELECT coalesce(array_agg(id), '{}') FROM upd WHERE ends) AS ends,
       (SELECT count(*)::int FROM dead) AS dead`;

/**
 * The commit with every check made first: the job rows and the key leases locked (a
 * completion is valid only if both still carry its fencing token) with the ledger check and
 * insert, in one statement; then the results by chain, and the state updates, lease
 * releases, job rows and dead letters in a second statement. A completion that fails the
 * fencing check writes nothing; a success already in the ledger writes only its job row.
 */
async function commitChecked(
  tx: SqlExecutor,
  t: Tables,
  workerId: string,
  completions: readonly Completion[],
): Promise<Checked> {
  // Lock the job rows and the key leases; a completion is valid only if both still carry
  // its fencing token. Looked up by primary key (a join on a record set plans badly). In the
  // same statement, the ledger check is its insert: a valid success whose ledger row was there
  // already is a duplicate. Ledger rows are written only under the job row's lock.
  const ids = completions.map((c) => c.id);
  const fences = new Map(completions.map((c) => [c.id, c.fence]));
  const successes = completions.filter(ledgered);
  const locked = await tx.query<
    {
      id: string;
      status: string;
      job_fence: number;
      fence: number;
      ends: boolean;
      ledgered: boolean;
    }
  >(
    `WITH locked AS (
       SELECT j.id, j.status, j.lease_fence AS job_fence, s.fence, j.on_end IS NOT NULL AS ends
       FROM ${t.jobs} j
       JOIN ${t.actorState} s ON s.key = ${LEASE_KEY("j")} AND s.lease_owner = $2
       WHERE j.id = ANY($1::text[])
       ORDER BY s.key COLLATE "C" -- the order claims take leases in
       FOR UPDATE OF j, s
     ), ledgered AS (
       INSERT INTO ${t.processed} (message_id)
       SELECT DISTINCT l.id FROM locked l
       JOIN unnest($3::text[], $4::int[]) AS c(id, fence) ON c.id = l.id
       WHERE l.status = 'running' AND l.job_fence = c.fence AND l.fence = l.job_fence
       ON CONFLICT DO NOTHING
       RETURNING message_id
     )
     SELECT l.*, false AS ledgered FROM locked l
     UNION ALL
     SELECT g.message_id, NULL, NULL, NULL, NULL, true FROM ledgered g`,
    [ids, workerId, successes.map((c) => c.id), successes.map((c) => c.fence)],
  );
  // The locked rows, then the ids whose ledger row this statement inserted (a union, not a
  // join: the planner cannot estimate either side and joined them in a nested loop, N² pairs).
  const inLedger = new Set(locked.filter((r) => r.ledgered).map((r) => r.id));
  const valid = new Set(
    locked.filter((r) =>
      r.status === "running" && r.job_fence === fences.get(r.id) && r.fence === r.job_fence
    ).map((r) => r.id),
  );
  const broken = new Set<string>();
  const results = completions.map((c): CommitResult => {
    const chain = chainOfCompletion(c);
    if (broken.has(chain)) return "stale";
    if (!valid.has(c.id)) {
      broken.add(chain);
      return "fenced";
    }
    if (ledgered(c) && !inLedger.has(c.id)) {
      broken.add(chain);
      return "duplicate";
    }
    return "committed";
  });
  const applies = (i: number) =>
    results[i] === "committed" && completions[i]!.outcome === "succeeded";
  // A link after a fenced link or a duplicate of its chain is stale: its ledger row goes.
  const unapplied = completions.filter((c, i) => inLedger.has(c.id) && !applies(i));
  if (unapplied.length > 0) {
    await tx.query(`DELETE FROM ${t.processed} WHERE message_id = ANY($1::text[])`, [
      unapplied.map((c) => c.id),
    ]);
  }

  // The state updates, lease releases, job rows and dead letters: one statement.
  const written = (i: number) => results[i] === "committed" || results[i] === "duplicate";
  const stateRows = chainRows(completions, written, applies)
    .filter((r) => r.set_state || r.release);
  const { kept, gone } = jobRows(completions.filter((_, i) => written(i)));
  if (kept.length > 0 || gone.length > 0 || stateRows.length > 0) {
    await tx.query(
      `WITH st AS (
         ${STATE_UPDATE(t)}
         FROM json_to_recordset($2::json) AS y(key text, set_state boolean, state json,
           release boolean)
         WHERE s.key = y.key
       ), x AS (
         SELECT * FROM json_to_recordset($1::json) AS ${X_COLUMNS("x")}
       ), ${JOB_WRITES(t, (x) => `j.id = ${x}.id`, gone.length > 0 ? "$3" : undefined)}
       ${DEAD_LETTERS(t)}`,
      [
        JSON.stringify(kept),
        JSON.stringify(stateRows),
        ...(gone.length > 0 ? [JSON.stringify(gone)] : []),
      ],
    );
  }
  return { results, withEnd: new Set(locked.filter((r) => r.ends).map((r) => r.id)) };
}
