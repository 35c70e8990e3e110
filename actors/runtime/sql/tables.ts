import type { QueryOptions } from "../ports.ts";

/**
 * The names the runtime's SQL uses for its tables and notification channels, for one schema.
 *
 * Invariants:
 * - A schema name matches `SCHEMA_NAME` (lower case, at most 63 characters), so a quoted name
 *   never needs escaping and is the one PostgreSQL folds an unquoted name to.
 * - In `public` the names are unqualified and the channels are `troupe_jobs` and
 *   `troupe_cancel`: the SQL is the text it has always been, resolved through `search_path`.
 * - In any other schema every table is qualified (`"schema"."troupe_jobs"`), and each channel
 *   carries the schema, so that runtimes on two schemas of one database do not wake or cancel
 *   each other's jobs. A channel name is cut to 63 characters (PostgreSQL refuses longer ones).
 */

/** A schema name the runtime accepts. */
export const SCHEMA_NAME: RegExp = /^[a-z_][a-z0-9_]{0,62}$/;

/** Qualified table names and channel names of the runtime in one schema. */
export interface Tables {
  /** The schema. */
  readonly schema: string;
  /** `troupe_jobs`: jobs and pipelines. */
  readonly jobs: string;
  /** `troupe_actor_state`: per-key state and lease. */
  readonly actorState: string;
  /** `troupe_processed_messages`: the ledger of pushed successes (see `Completion.ledger`). */
  readonly processed: string;
  /** `troupe_outbox`: committed messages not yet handed to a transport that asks for rows here. */
  readonly outbox: string;
  /** `troupe_dead_letters`. */
  readonly deadLetters: string;
  /** `troupe_groups`: fan-in counters (see `../groups.ts`). */
  readonly groups: string;
  /** `troupe_workers`: runtime instances and their heartbeats. */
  readonly workers: string;
  /** `troupe_actor_pauses`: actors whose jobs wait until resumed. */
  readonly pauses: string;
  /** `troupe_schedule_pauses`: schedules whose slots make no job until resumed. */
  readonly schedulePauses: string;
  /** Notified at commit when jobs are inserted, for a transport that asks (the table queue). */
  readonly jobsChannel: string;
  /** Notified with a job id whose handler must stop wherever it runs. */
  readonly cancelChannel: string;
  /** Notified with ids of jobs that changed, for live views (see `../event_relay.ts`). */
  readonly jobEventsChannel: string;
}

/** The names in `schema`; throws a `TypeError` on a name `SCHEMA_NAME` refuses. */
export function tables(schema = "public"): Tables {
  if (!SCHEMA_NAME.test(schema)) {
    throw new TypeError(
      `schema ${JSON.stringify(schema)} is invalid: lower-case letters, digits and "_", ` +
        "at most 63 characters, not starting with a digit",
    );
  }
  const pub = schema === "public";
  const table = (name: string) => pub ? name : `"${schema}"."${name}"`;
  const channel = (name: string) => pub ? name : `${name}_${schema}`.slice(0, 63);
  return {
    schema,
    jobs: table("troupe_jobs"),
    actorState: table("troupe_actor_state"),
    processed: table("troupe_processed_messages"),
    outbox: table("troupe_outbox"),
    deadLetters: table("troupe_dead_letters"),
    groups: table("troupe_groups"),
    workers: table("troupe_workers"),
    pauses: table("troupe_actor_pauses"),
    schedulePauses: table("troupe_schedule_pauses"),
    jobsChannel: channel("troupe_jobs"),
    cancelChannel: channel("troupe_cancel"),
    jobEventsChannel: channel("troupe_job_events"),
  };
}

/** The names in `public`. */
export const PUBLIC_TABLES: Tables = tables("public");

/**
 * The options of the statements run for every batch of messages (claim, commit, enqueue): kept
 * prepared on each connection where the driver can (see `QueryOptions`). Their texts depend
 * only on the schema and the shape of a batch, so a connection holds a few dozen of them.
 */
export const PREPARED: QueryOptions = { prepare: true };
