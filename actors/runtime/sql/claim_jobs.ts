import type { SqlDatabase, SqlExecutor } from "../ports.ts";
import { PREPARED, type Tables } from "./tables.ts";

/** A job handed to this worker together with the lease of its key. */
export interface ClaimedJob {
  id: string;
  actor: string;
  key: string;
  tenant_id: string | null;
  input: unknown;
  attempts: number;
  max_attempts: number;
  lease_fence: number;
  state: unknown;
  cancel_requested: boolean;
  /** Times the job's process stopped while it ran (see `reapJobs`); above 0 it is a suspect. */
  lease_losses: number;
  /** The pipeline the job belongs to (see `pipelines.ts`). */
  pipeline_id: string | null;
  /** The group the job is a part of (see `../groups.ts`). */
  group_id?: string | null;
  /** The version of its actor's input shape it was made with (see `../versions.ts`). */
  input_version?: number;
  /** The W3C trace context the message was made in (see `../tracing.ts`). */
  traceparent?: string | null;
  /** The `tracestate` that goes with `traceparent`. */
  tracestate?: string | null;
  /** Whether the job carries an end message (see `../job_end.ts`). */
  has_end?: boolean;
  /**
   * Claimed for an actor declared `ordered: false`: under this process's instance lease
   * (`instanceLease`), whose fencing token `lease_fence` is, not under its key's lease.
   */
  unordered?: boolean;
}

/**
 * The key of the instance lease of the process `workerId` in `troupe_actor_state`: the jobs of
 * actors declared `ordered: false` run under it, not under a lease of their key. One row per
 * process; its actor is null, so no actor's key listing shows it.
 */
export function instanceLease(workerId: string): string {
  return `${INSTANCE_PREFIX}${workerId}`;
}

/** The prefix of instance lease keys (`instanceLease`), as a SQL literal too. */
const INSTANCE_PREFIX = "~instance:";
export const INSTANCE_PREFIX_SQL = `'${INSTANCE_PREFIX}'`;

/**
 * The lease row a running job `j` is under, as a SQL expression: its key's, or for an unordered
 * job the instance lease of its owner (null once the owner gave it back).
 */
export const LEASE_KEY = (j: string) =>
  `CASE WHEN ${j}.unordered THEN ${INSTANCE_PREFIX_SQL} || ${j}.lease_owner ELSE ${j}.key END`;

/**
 * The query that locks the lease rows of `keys` (a `text[]` expression) meeting `where`, in the
 * keys' byte order: the order a claim takes leases in (`leaseAndRun`). A claim keeps locked the
 * row of a key whose lease it found held while it goes on to later keys; every statement that
 * writes several lease rows locks them this way first, so that none waits on a claim for one key
 * while the claim waits on it for another.
 */
export const LOCK_LEASES = (t: Tables, keys: string, where = "true") =>
  `SELECT s.key FROM ${t.actorState} s WHERE s.key = ANY(${keys}) AND ${where}
   ORDER BY s.key COLLATE "C"
   FOR UPDATE OF s`;

/** The columns of a claimed job row `j` (a `ClaimedJob` but for its key's `state`). */
const CLAIMED = `j.id, j.actor, j.key, j.tenant_id, j.input, j.attempts, j.max_attempts,
  j.lease_fence, j.cancel_requested, j.lease_losses, j.pipeline_id, j.group_id, j.input_version,
  j.traceparent, j.tracestate, j.on_end IS NOT NULL AS has_end, j.unordered`;

/** A candidate row of a claim, before its key is leased. */
interface Candidate {
  id: string;
  key: string;
  actor: string;
  /** The tenant group: the job's tenant, `''` for jobs without one. */
  tenant: string;
  priority: number;
  /** `run_at` as fixed-width text (orders like the timestamp). */
  at: string;
  /** The row's `ctid` as text: locked by the claim, it stays put until the claim's update. */
  tid: string;
  /** Its actor is declared `ordered: false` (see `ClaimOptions.unordered`). */
  u: boolean;
}

/** The most rounds a fair claim takes to hand out capacity left by tenants with little work. */
const MAX_ROUNDS = 4;

/**
 * Claims up to `limit` runnable jobs (table queue), in one transaction:
 * 1. candidates, locked with `FOR UPDATE SKIP LOCKED` (concurrent workers never claim the same
 *    row), skipping keys whose lease is held and actors that are paused;
 * 2. the lease of each candidate key, taken in key order (two claimers never wait on each
 *    other's keys in opposite orders); a key leased elsewhere meanwhile keeps its jobs queued;
 *    the actor of the key's first candidate is recorded on it;
 * 3. the candidates of leased keys marked running under their key's fencing token.
 * With one tenant group queued, the three are one statement (data-modifying CTEs); with
 * several, the candidates are taken first (see below) and 2 and 3 are one statement.
 * Several jobs of one key may be claimed together: they run one after another under one lease.
 * The jobs of actors declared `ordered: false` (`unordered`) skip the key leases: they are
 * claimed under this process's instance lease (one row, taken or renewed by the claim; see
 * `instanceLease`), whatever their keys.
 *
 * Fair across tenants: the tenants with queued work are found first (a skip scan over
 * `troupe_jobs_tenant_claim_idx`, one index probe per tenant). With one, its jobs are taken in
 * queue order (priority, then `run_at`, then id). With several, each is given a share of
 * `limit` in proportion to its weight (`tenantWeights`, 1 when unlisted; jobs without a tenant
 * are the group `''`), remainders going to tenants in an order that starts at a random one, and
 * takes up to its share from its own index range in queue order; what tenants with less work
 * leave is handed out again, by weight, to the tenants that filled their share. So one tenant's
 * backlog never holds back another tenant's job by more than a claim. Jobs of one key and one
 * tenant run in queue order; jobs of one key made by different tenants are ordered by tenant
 * share first.
 *
 * The statements are shaped so that plans stay right whatever the statistics say (right after
 * a burst of enqueues they are empty or stale): the queue is walked in index order, and rows
 * are found by primary key, never by sorting or scanning the whole table.
 */
export async function claimJobs(
  db: SqlDatabase,
  t: Tables,
  options: ClaimOptions,
): Promise<ClaimedJob[]> {
  return await db.transaction((tx) => claimJobsIn(tx, t, options));
}

/** What a claim takes (see `claimJobs`). */
export interface ClaimOptions {
  actors: readonly string[];
  limit: number;
  workerId: string;
  leaseMs: number;
  /** Each tenant's weight in a claim (unlisted: 1; `''`: jobs without a tenant). */
  tenantWeights?: Readonly<Record<string, number>> | undefined;
  /**
   * Keys whose lease this worker holds (their chains still run): their jobs are passed over
   * by one hashed comparison a row instead of a probe of the key's lease row. A key listed
   * here whose lease is free already has its jobs claimed by a later claim.
   */
  skipKeys?: readonly string[] | undefined;
  /** The actors among `actors` declared `ordered: false`: no key lease, the instance lease. */
  unordered?: readonly string[] | undefined;
  /**
   * The fencing token the instance lease row is made with when there is none (one more than
   * the last this process saw: a row removed while the process was away never repeats one).
   */
  instanceFence?: number | undefined;
}

/**
 * The claim of `claimJobs` in the transaction `tx`, as its last statements: its plan
 * settings hold until that transaction ends. The pull dispatcher claims so in the transaction
 * of a commit (see `Dispatcher.claimAlong`).
 */
export async function claimJobsIn(
  tx: SqlExecutor,
  t: Tables,
  {
    actors,
    limit,
    workerId,
    leaseMs,
    tenantWeights = {},
    skipKeys = [],
    unordered = [],
    instanceFence = 1,
  }: ClaimOptions,
): Promise<ClaimedJob[]> {
  const mode = runnableMode(actors, unordered);
  await tx.query(
    `SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),
      set_config('jit', 'off', true)`,
    [],
    PREPARED,
  );
  const tenants = await queuedTenants(tx, t);
  if (tenants.length === 0) return [];
  if (tenants.length === 1) {
    // Candidates, leases and the running mark in one statement.
    return await leaseAndRun(
      tx,
      t,
      `SELECT j.id, j.key, j.actor, j.ctid AS tid, j.actor = ANY($4::text[]) AS u,
         row_number() OVER (ORDER BY j.priority DESC NULLS LAST, j.run_at, j.id) AS ord
       FROM (
         SELECT j.id, j.key, j.actor, j.priority, j.run_at, j.ctid FROM ${t.jobs} j
         WHERE coalesce(j.tenant_id, '') = $5 AND ${RUNNABLE(t, "$1", "j", "$3", "$4", mode)}
         ORDER BY j.priority DESC NULLS LAST, j.run_at, j.id -- troupe_jobs_tenant_claim_idx
         LIMIT $2
         FOR UPDATE OF j SKIP LOCKED) j`,
      [actors, limit, skipKeys, unordered, tenants[0]],
      { workerId, leaseMs, mode, instanceFence },
    );
  }
  const candidates = await fairShares(tx, t, {
    actors,
    limit,
    tenants,
    weights: tenantWeights,
    skipKeys,
    unordered,
    mode,
  });
  if (candidates.length === 0) return [];
  return await leaseAndRun(
    tx,
    t,
    `SELECT x.id, x.key, x.actor, x.tid, x.u, x.ord
     FROM unnest($1::text[], $2::text[], $3::text[], $4::tid[], $5::boolean[])
       WITH ORDINALITY AS x(id, key, actor, tid, u, ord)`,
    [
      candidates.map((c) => c.id),
      candidates.map((c) => c.key),
      candidates.map((c) => c.actor),
      candidates.map((c) => c.tid),
      candidates.map((c) => c.u),
    ],
    { workerId, leaseMs, mode, instanceFence },
  );
}

/**
 * Which lease the jobs of a claim take: every actor's keys' (`keyed`, the common case: the
 * statements as they were tuned), none but the instance lease (`unordered`), or either by
 * actor (`mixed`).
 */
type RunnableMode = "keyed" | "unordered" | "mixed";

function runnableMode(actors: readonly string[], unordered: readonly string[]): RunnableMode {
  if (unordered.length === 0) return "keyed";
  return actors.every((a) => unordered.includes(a)) ? "unordered" : "mixed";
}

/**
 * Takes the leases of the keys of `candidates` (a query of locked queued jobs: `id`, `key`,
 * `actor`, `tid` the row's `ctid`, `u` whether its actor is unordered, `ord` their queue order,
 * with `params` as its parameters) and marks the jobs of leased keys running under their key's
 * fencing token, in one statement. Key rows are locked in one order by every claimer, the
 * keys' byte order (in queue order, two instances that want each other's keys wait on each
 * other and one fails as a deadlock); a key leased elsewhere meanwhile keeps its jobs queued;
 * the actor of the key's first candidate is recorded on it.
 * The jobs of unordered actors take no key lease: the instance lease of this process is taken
 * or renewed (`instanceLease`: its token kept while it is held, a new one once it lapsed) and
 * they run under its token.
 * The jobs come back in queue order: a key's jobs run in that order.
 *
 * A job row is found by its `ctid` (a TID scan, no primary key probe), checked against its
 * id: the row is locked by this transaction, so no other can move it in between.
 *
 * The leases are looked up by key in one jsonb object, not joined: the planner estimates one
 * row for each CTE and would join them in a nested loop (candidates × leases comparisons). The
 * sorts (`enable_sort` is off) would cost the plan over `jit_above_cost`: JIT is off.
 */
async function leaseAndRun(
  tx: SqlExecutor,
  t: Tables,
  candidates: string,
  params: readonly unknown[],
  { workerId, leaseMs, mode, instanceFence }: {
    workerId: string;
    leaseMs: number;
    mode: RunnableMode;
    instanceFence: number;
  },
): Promise<ClaimedJob[]> {
  const w = `$${params.length + 1}`;
  const secs = `$${params.length + 2}`;
  const extra = mode === "keyed" ? [] : [instanceLease(workerId), instanceFence];
  const keyed = mode !== "unordered";
  const ctes = [`c AS MATERIALIZED (${candidates})`];
  if (mode !== "keyed") {
    ctes.push(`inst AS (
       ${
      INSTANCE_UPSERT(
        t,
        `SELECT $${params.length + 3}, $${params.length + 4}, ${w},
           now() + make_interval(secs => ${secs})
         WHERE EXISTS (SELECT 1 FROM c WHERE c.u)`,
      )
    })`);
  }
  if (keyed) {
    ctes.push(`leases AS (
       INSERT INTO ${t.actorState} AS s (key, actor, fence, lease_owner, lease_until)
       SELECT k.key, k.actor, 1, ${w}, now() + make_interval(secs => ${secs})
       FROM (SELECT DISTINCT ON (c.key COLLATE "C") c.key, c.actor FROM c
             ${mode === "mixed" ? "WHERE NOT c.u" : ""}
             ORDER BY c.key COLLATE "C", c.ord) k
       ORDER BY k.key COLLATE "C"
       ON CONFLICT (key) DO UPDATE SET fence = s.fence + 1, lease_owner = EXCLUDED.lease_owner,
         lease_until = EXCLUDED.lease_until, actor = EXCLUDED.actor, updated_at = now()
       WHERE s.lease_until IS NULL OR s.lease_until <= now()
       RETURNING s.key, s.fence, s.state)`);
    ctes.push(`l AS MATERIALIZED (
       SELECT jsonb_object_agg(key, jsonb_build_array(fence, state)) AS m FROM leases)`);
  }
  const keyFence = `(l.m -> c.key ->> 0)::int`;
  const instFence = `(SELECT fence FROM inst)`;
  const [fence, taken, state] = mode === "keyed"
    ? [keyFence, `l.m ? c.key`, `l.m -> c.key -> 1`]
    : mode === "unordered"
    ? [instFence, "true", "NULL::jsonb"]
    : [
      `CASE WHEN c.u THEN ${instFence} ELSE ${keyFence} END`,
      `(c.u OR l.m ? c.key)`,
      `CASE WHEN c.u THEN NULL ELSE l.m -> c.key -> 1 END`,
    ];
  const rows = await tx.query<ClaimedJob & { ord: number }>(
    `WITH ${ctes.join(",\n     ")}
     UPDATE ${t.jobs} j SET status = 'running', attempts = j.attempts + 1, lease_owner = ${w},
       lease_fence = ${fence}, unordered = c.u, started_at = coalesce(j.started_at, now()),
       updated_at = now()
     FROM c${keyed ? ", l" : ""}
     WHERE j.ctid = c.tid AND j.id = c.id AND ${taken}
     RETURNING ${CLAIMED}, ${state} AS state, c.ord`,
    [...params, workerId, leaseMs / 1000, ...extra],
    PREPARED,
  );
  // RETURNING order is unspecified.
  return rows.sort((a, b) => Number(a.ord) - Number(b.ord)).map(({ ord: _, ...job }) => job);
}

/**
 * The tenant groups with queued jobs (`''`: no tenant), by a skip scan: a probe per tenant.
 * Backward: a tenant's claimed jobs leave dead index entries at the start of its range (until
 * a vacuum), its newest jobs are at the end, so a probe from above meets live entries first.
 */
async function queuedTenants(tx: SqlExecutor, t: Tables): Promise<string[]> {
  const rows = await tx.query<{ g: string }>(
    `WITH RECURSIVE q(g) AS (
       (SELECT coalesce(tenant_id, '') FROM ${t.jobs} WHERE status = 'queued'
        ORDER BY coalesce(tenant_id, '') DESC LIMIT 1) -- troupe_jobs_tenant_claim_idx
       UNION ALL
       SELECT (SELECT coalesce(j.tenant_id, '') FROM ${t.jobs} j
               WHERE j.status = 'queued' AND coalesce(j.tenant_id, '') < q.g
               ORDER BY coalesce(j.tenant_id, '') DESC LIMIT 1)
       FROM q WHERE q.g IS NOT NULL)
     SELECT g FROM q WHERE g IS NOT NULL`,
    [],
    PREPARED,
  );
  return rows.map((r) => r.g).reverse();
}

// Paused actors are taken out of the list once (an init plan), not checked per row. The keys
// this worker holds (`skip`, a parameter: a constant of the plan, so `<> ALL` is one hash
// lookup a row) are passed over before the lease of a row's key is looked up. The jobs of
// unordered actors (`unordered`, see `ClaimOptions`) are runnable whatever their key's lease.
const RUNNABLE = (
  t: Tables,
  actors: string,
  alias: string,
  skip: string,
  unordered: string,
  mode: RunnableMode,
) => {
  const free = `${alias}.key <> ALL(${skip}::text[])
   AND NOT EXISTS (
     SELECT 1 FROM ${t.actorState} s WHERE s.key = ${alias}.key AND s.lease_until > now())`;
  return `${alias}.status = 'queued' AND ${alias}.run_at <= now()
   AND ${alias}.actor = ANY(ARRAY(SELECT a FROM unnest(${actors}::text[]) AS a
     WHERE NOT EXISTS (SELECT 1 FROM ${t.pauses} p WHERE p.actor = a)))${
    mode === "keyed"
      ? `\n   AND ${free}`
      : mode === "mixed"
      ? `\n   AND (${alias}.actor = ANY(${unordered}::text[]) OR (${free}))`
      : `\n   AND ${skip}::text[] IS NOT NULL` // no key lease; the parameter still typed
  }`;
};

const CANDIDATE = `j.id, j.key, j.actor, coalesce(j.tenant_id, '') AS tenant, j.priority,
   to_char(j.run_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') AS at, j.ctid::text AS tid,
   j.actor = ANY($6::text[]) AS u`;

/** Up to `limit` runnable jobs, shared among `tenants` by weight (see `claimJobs`). */
async function fairShares(
  tx: SqlExecutor,
  t: Tables,
  { actors, limit, tenants, weights, skipKeys, unordered, mode }: {
    actors: readonly string[];
    limit: number;
    tenants: readonly string[];
    weights: Readonly<Record<string, number>>;
    skipKeys: readonly string[];
    unordered: readonly string[];
    mode: RunnableMode;
  },
): Promise<Candidate[]> {
  const taken: Candidate[] = [];
  const got = new Map<string, number>();
  let open = [...tenants];
  for (let round = 0; round < MAX_ROUNDS && open.length > 0; round++) {
    if (taken.length >= limit) break;
    const asked = [...topUps(open, weights, limit - taken.length, got)].filter(([, n]) => n > 0);
    const rows = await tx.query<Candidate>(
      `SELECT c.* FROM unnest($2::text[], $3::int[]) AS q(g, share)
       CROSS JOIN LATERAL (
         SELECT ${CANDIDATE} FROM ${t.jobs} j
         WHERE coalesce(j.tenant_id, '') = q.g AND ${RUNNABLE(t, "$1", "j", "$5", "$6", mode)}
           AND j.id <> ALL($4::text[])
         ORDER BY j.priority DESC NULLS LAST, j.run_at, j.id -- troupe_jobs_tenant_claim_idx
         LIMIT q.share
         FOR UPDATE OF j SKIP LOCKED) c`,
      [
        actors,
        asked.map(([g]) => g),
        asked.map(([, n]) => n),
        taken.map((c) => c.id),
        skipKeys,
        unordered,
      ],
      PREPARED,
    );
    taken.push(...rows);
    const now = new Map<string, number>();
    for (const r of rows) now.set(r.tenant, (now.get(r.tenant) ?? 0) + 1);
    for (const [g, n] of now) got.set(g, (got.get(g) ?? 0) + n);
    // A tenant that got less than it asked for has nothing more to give now.
    const short = new Set(asked.filter(([g, n]) => (now.get(g) ?? 0) < n).map(([g]) => g));
    open = open.filter((g) => !short.has(g));
    if (rows.length === 0) break;
  }
  // Queue order across the claim: the jobs of one key run in the order they were claimed in.
  return taken.sort((a, b) =>
    b.priority - a.priority || (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : 1)
  );
}

/**
 * What each of the `open` tenants asks for next so that, with what they `got` already, the
 * claim ends up split by weight among them (`left` more in all). A tenant that already got
 * more than its part asks for nothing, and the rest is split among the others.
 */
function topUps(
  open: readonly string[],
  weights: Readonly<Record<string, number>>,
  left: number,
  got: ReadonlyMap<string, number>,
): Map<string, number> {
  const start = Math.floor(Math.random() * open.length);
  let pool = [...open];
  for (;;) {
    const capacity = left + pool.reduce((sum, g) => sum + (got.get(g) ?? 0), 0);
    const shares = tenantShares(pool, weights, capacity, start % pool.length);
    const over = pool.filter((g) => (got.get(g) ?? 0) > shares.get(g)!);
    if (over.length === 0) {
      return new Map(pool.map((g) => [g, shares.get(g)! - (got.get(g) ?? 0)]));
    }
    pool = pool.filter((g) => !over.includes(g));
  }
}

/** `weights` when every one is a positive finite number; throws a `TypeError` otherwise. */
export function checkTenantWeights(
  weights: Readonly<Record<string, number>> = {},
): Readonly<Record<string, number>> {
  for (const [tenant, w] of Object.entries(weights)) {
    if (!(typeof w === "number" && Number.isFinite(w) && w > 0)) {
      throw new TypeError(`tenantWeights["${tenant}"] must be a positive number, got ${w}`);
    }
  }
  return { ...weights };
}

/**
 * Splits `capacity` among `tenants` in proportion to their weights (unlisted: 1): each gets the
 * whole part of its share, and what is left goes one by one to the largest fractions, ties
 * broken in tenant order starting at `start` (a random start spreads them over claims).
 */
export function tenantShares(
  tenants: readonly string[],
  weights: Readonly<Record<string, number>>,
  capacity: number,
  start = 0,
): Map<string, number> {
  const weightOf = (g: string) => weights[g] ?? 1;
  const total = tenants.reduce((sum, g) => sum + weightOf(g), 0);
  const exact = tenants.map((g) => (capacity * weightOf(g)) / total);
  const shares = exact.map(Math.floor);
  let left = capacity - shares.reduce((a, b) => a + b, 0);
  const n = tenants.length;
  const order = tenants.map((_, i) => (start + i) % n)
    .sort((a, b) => (exact[b]! - shares[b]!) - (exact[a]! - shares[a]!) || rank(a) - rank(b));
  function rank(i: number): number {
    return (i - start + n) % n;
  }
  for (const i of order) {
    if (left <= 0) break;
    shares[i]!++;
    left--;
  }
  return new Map(tenants.map((g, i) => [g, shares[i]!]));
}

/**
 * Push path: takes the lease of `key` and marks job `id` running under it: a queued job, or a
 * running one whose lease was given back. A running job whose lease lapsed while held (its
 * process stopped) is left to the reaper, which counts the lost lease.
 * Returns null when the key is leased elsewhere (busy) or the job is not runnable.
 * A job of an unordered actor (`unordered`) is marked running under the instance lease instead,
 * taken or renewed in the same statement (see `leaseAndRun`).
 */
export async function claimOne(
  db: SqlExecutor,
  t: Tables,
  { id, key, actor, workerId, leaseMs, unordered = false, instanceFence = 1 }: {
    id: string;
    key: string;
    /** The job's actor, recorded on the key (see `troupe_actor_state.actor`). */
    actor?: string;
    workerId: string;
    leaseMs: number;
    /** The actor is declared `ordered: false`. */
    unordered?: boolean;
    /** See `ClaimOptions.instanceFence`. */
    instanceFence?: number;
  },
): Promise<{ job: ClaimedJob | null; leased: boolean }> {
  if (unordered) {
    const rows = await db.query<ClaimedJob>(
      `WITH inst AS (
         ${INSTANCE_UPSERT(t, "VALUES ($3, $4, $2, now() + make_interval(secs => $5))")})
       UPDATE ${t.jobs} j SET status = 'running', attempts = j.attempts + 1, lease_owner = $2,
         lease_fence = inst.fence, unordered = true, started_at = coalesce(j.started_at, now()),
         updated_at = now()
       FROM inst
       WHERE j.id = $1 AND (j.status = 'queued' OR (j.status = 'running' AND j.lease_owner IS NULL))
       RETURNING ${CLAIMED}, NULL::jsonb AS state`,
      [id, workerId, instanceLease(workerId), instanceFence, leaseMs / 1000],
    );
    return { job: rows[0] ?? null, leased: true };
  }
  const lease = await db.query<{ fence: number; state: unknown }>(
    `INSERT INTO ${t.actorState} AS s (key, actor, fence, lease_owner, lease_until)
     VALUES ($1, $4, 1, $2, now() + make_interval(secs => $3))
     ON CONFLICT (key) DO UPDATE SET fence = s.fence + 1, lease_owner = EXCLUDED.lease_owner,
       lease_until = EXCLUDED.lease_until, actor = coalesce(EXCLUDED.actor, s.actor),
       updated_at = now()
     WHERE s.lease_until IS NULL OR s.lease_until <= now()
     RETURNING s.fence, s.state`,
    [key, workerId, leaseMs / 1000, actor ?? null],
  );
  const held = lease[0];
  if (!held) return { job: null, leased: false };
  const rows = await db.query<ClaimedJob>(
    `UPDATE ${t.jobs} j SET status = 'running', attempts = j.attempts + 1, lease_owner = $2,
       lease_fence = $3, started_at = coalesce(j.started_at, now()), updated_at = now()
     WHERE j.id = $1 AND (j.status = 'queued'
       OR (j.status = 'running' AND j.lease_fence IS DISTINCT FROM $3 AND j.lease_owner IS NULL))
     RETURNING ${CLAIMED}`,
    [id, workerId, held.fence],
  );
  const job = rows[0];
  if (!job) {
    await releaseLeases(db, t, workerId, [{ key, fence: held.fence }]);
    return { job: null, leased: true };
  }
  return { job: { ...job, state: held.state }, leased: true };
}

/**
 * Gives back leases this worker holds (no-op for a lease it lost). Jobs of the key still
 * running under the lease lose their owner too: the reaper requeues them without counting a
 * lost lease, since their process did not stop.
 */
export async function releaseLeases(
  db: SqlExecutor,
  t: Tables,
  workerId: string,
  leases: readonly { key: string; fence: number }[],
): Promise<void> {
  if (leases.length === 0) return;
  await db.query(
    `WITH x AS (
       SELECT * FROM json_to_recordset($1::json) AS x(key text, fence int)
     ), lk AS MATERIALIZED (
       ${LOCK_LEASES(t, "ARRAY(SELECT key FROM x)", "s.lease_owner = $2")}
     ), released AS (
       UPDATE ${t.actorState} s SET lease_owner = NULL, lease_until = NULL, updated_at = now()
       FROM x WHERE s.key = x.key AND s.fence = x.fence AND s.lease_owner = $2
         AND s.key IN (SELECT key FROM lk)
       RETURNING s.key, s.fence
     )
     UPDATE ${t.jobs} j SET lease_owner = NULL, updated_at = now()
     FROM released r
     WHERE ${LEASE_KEY("j")} = r.key AND j.lease_fence = r.fence AND j.status = 'running'
       AND j.lease_owner = $2`,
    [JSON.stringify(leases), workerId],
  );
}

/**
 * Extends the leases this worker holds; returns the current fencing token of each key, so the
 * caller can tell a lease taken over (token moved on) from one it released itself.
 */
export async function extendLeases(
  db: SqlExecutor,
  t: Tables,
  { workerId, keys, leaseMs }: { workerId: string; keys: readonly string[]; leaseMs: number },
): Promise<Map<string, number>> {
  if (keys.length === 0) return new Map();
  const rows = await db.query<{ key: string; fence: number }>(
    `WITH lk AS MATERIALIZED (
       ${LOCK_LEASES(t, "$2::text[]", "s.lease_owner = $1")}
     ), renewed AS (
       UPDATE ${t.actorState} SET lease_until = now() + make_interval(secs => $3)
       WHERE key IN (SELECT key FROM lk) AND lease_owner = $1 RETURNING key)
     SELECT s.key, s.fence FROM ${t.actorState} s WHERE s.key = ANY($2::text[])`,
    [workerId, keys, leaseMs / 1000],
  );
  return new Map(rows.map((r) => [r.key, r.fence]));
}

/**
 * The statement that takes or renews an instance lease, returning its fencing token: `values`
 * gives the row (key, token of a new row, owner, until). A lease its owner still holds keeps
 * its token; one that lapsed (or was given back) gets a new one: the jobs claimed under the
 * old token are the reaper's from then on, and their commits are refused.
 */
const INSTANCE_UPSERT = (t: Tables, values: string) =>
  `INSERT INTO ${t.actorState} AS s (key, fence, lease_owner, lease_until)
   ${values}
   ON CONFLICT (key) DO UPDATE SET
     fence = CASE WHEN s.lease_owner = EXCLUDED.lease_owner AND s.lease_until > now()
       THEN s.fence ELSE s.fence + 1 END,
     lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until, updated_at = now()
   RETURNING s.fence`;

/**
 * Renews this worker's instance lease (see `instanceLease`), or takes it again once it lapsed,
 * under a new fencing token; returns the token. `fence` is the token a new row starts with.
 */
export async function renewInstanceLease(
  db: SqlExecutor,
  t: Tables,
  { workerId, leaseMs, fence }: { workerId: string; leaseMs: number; fence: number },
): Promise<number> {
  const rows = await db.query<{ fence: number }>(
    INSTANCE_UPSERT(t, "VALUES ($1, $3, $2, now() + make_interval(secs => $4))"),
    [instanceLease(workerId), workerId, fence, leaseMs / 1000],
  );
  return rows[0]!.fence;
}

/**
 * Gives back unordered jobs this worker claimed (`id` under the instance lease's `fence`) that
 * it will not finish: they lose their owner, and the reaper requeues them without counting a
 * lost lease, as for a key lease given back (`releaseLeases`).
 */
export async function releaseJobs(
  db: SqlExecutor,
  t: Tables,
  workerId: string,
  jobs: readonly { id: string; fence: number }[],
): Promise<void> {
  if (jobs.length === 0) return;
  await db.query(
    `UPDATE ${t.jobs} j SET lease_owner = NULL, updated_at = now()
     FROM unnest($1::text[], $2::int[]) AS x(id, fence)
     WHERE j.id = x.id AND j.lease_fence = x.fence AND j.status = 'running' AND j.unordered
       AND j.lease_owner = $3`,
    [jobs.map((j) => j.id), jobs.map((j) => j.fence), workerId],
  );
}
