/**
 * Times what a runtime asks of its database, by kind: claims (`claimJobs`), commits
 * (`completeJobs`), enqueues and the rest. A wrapper around a `SqlDatabase`; the runtime runs on
 * it unchanged. A transaction's time runs from the call to its end (on a pool that includes the
 * wait for a connection; on PGlite, the wait for the one connection).
 */
import type { QueryOptions, SqlDatabase, SqlExecutor } from "@troupe/runtime";

/** What one kind of call cost. */
export interface Kind {
  calls: number;
  ms: number;
  /** Jobs a claim returned, or completions a commit wrote (their first statement's id array). */
  items: number;
}

/** Call counts and times by kind (see `timedDb`). */
export class SqlTimes {
  readonly kinds = new Map<string, Kind>();
  /** Statements inside transactions, by name; `... (rest)`: BEGIN, COMMIT and the gaps. */
  readonly statements = new Map<string, Kind>();

  addStatement(name: string, ms: number): void {
    const k = this.statements.get(name) ?? { calls: 0, ms: 0, items: 0 };
    k.calls++;
    k.ms += ms;
    this.statements.set(name, k);
  }

  clear(): void {
    this.kinds.clear();
    this.statements.clear();
  }

  add(kind: string, ms: number, items: number): void {
    const k = this.kinds.get(kind) ?? { calls: 0, ms: 0, items: 0 };
    k.calls++;
    k.ms += ms;
    k.items += items;
    this.kinds.set(kind, k);
  }
}

/** Names of the statements the runtime runs per message, by a fragment of their text. */
const STATEMENTS: [string, string][] = [
  ["set_config('enable_sort'", "claim: plan settings"],
  ["WITH RECURSIVE q(g)", "claim: tenants"],
  ["FOR UPDATE OF j SKIP LOCKED", "claim: candidates"],
  ["INSERT INTO troupe_actor_state AS s", "claim: leases"],
  ["SET status = 'running'", "claim: mark running"],
  ["SAVEPOINT troupe_commit", "commit: savepoint"],
  ["j.lease_fence = x.fence", "commit: job rows, leases, ledger (one statement)"],
  ["ROLLBACK TO SAVEPOINT troupe_commit", "commit: back to the checked path"],
  ["AS job_fence", "commit (checked): lock jobs and leases, ledger"],
  ["INSERT INTO troupe_dead_letters", "commit (checked): state, lease release and job rows"],
  ["INSERT INTO bench_rows", "commit: effects"],
  ["WITH ins AS", "enqueue: insert"],
];

function statement(sql: string): string {
  if (sql.includes("l AS MATERIALIZED")) {
    return sql.includes("SKIP LOCKED")
      ? "claim: candidates, leases, mark running (one statement)"
      : "claim: leases, mark running (one statement)";
  }
  for (const [fragment, name] of STATEMENTS) if (sql.includes(fragment)) return name;
  return sql.replace(/\s+/g, " ").slice(0, 40);
}

function classify(sql: string): string {
  if (sql.includes("set_config('enable_sort'")) return "claim";
  if (sql.includes("AS job_fence") || sql.includes("j.lease_fence = x.fence")) return "commit";
  if (sql.includes("INSERT INTO troupe_jobs") || sql.includes("WITH ins AS")) return "enqueue";
  if (sql.includes("UPDATE troupe_actor_state SET lease_until")) return "lease renewal";
  if (sql.includes("count(*)::int AS n FROM troupe_jobs")) return "bench poll";
  return "other";
}

/** The completions a commit statement writes: its id array, or its array of job rows. */
function commitItems(sql: string, params?: unknown[]): number {
  if (sql.includes("AS job_fence")) return (params?.[0] as unknown[]).length;
  if (sql.includes("j.lease_fence = x.fence")) return JSON.parse(params?.[0] as string).length;
  return 0;
}

/** `db` with every call timed into `times` (transactions by the kind of their statements). */
export function timedDb(db: SqlDatabase, times: SqlTimes): SqlDatabase {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "transaction") {
        return async <T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> => {
          const t0 = performance.now();
          let kind = "";
          let items = 0;
          let result: T | undefined;
          let inStatements = 0;
          let began = 0;
          try {
            result = await target.transaction((tx) => {
              began = performance.now();
              return fn({
                query: async (sql: string, params?: unknown[], options?: QueryOptions) => {
                  const k = classify(sql);
                  // The first telling statement names the transaction.
                  if (kind === "" || (kind === "other" && k !== "other")) kind = k;
                  if (kind === "commit" && items === 0) items = commitItems(sql, params);
                  const s0 = performance.now();
                  try {
                    return await tx.query(sql, params, options);
                  } finally {
                    const ms = performance.now() - s0;
                    inStatements += ms;
                    times.addStatement(statement(sql), ms);
                  }
                },
              } as SqlExecutor);
            });
            if (kind === "claim") items = (result as unknown[]).length;
            return result;
          } finally {
            const end = performance.now();
            const name = kind || "other";
            times.add(`${name} (transaction)`, end - t0, items);
            if (began > 0) {
              times.addStatement(`${name}: connection wait`, began - t0);
              times.addStatement(`${name}: BEGIN, COMMIT, gaps`, end - began - inStatements);
            }
          }
        };
      }
      if (prop === "query") {
        return async (sql: string, params?: unknown[], options?: QueryOptions) => {
          const t0 = performance.now();
          try {
            return await target.query(sql, params, options);
          } finally {
            times.add(classify(sql), performance.now() - t0, 0);
          }
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}
