/**
 * Test databases: every contract suite runs against each target.
 * - `pglite`: in-memory embedded PostgreSQL (in the test's thread; in a worker of its own with
 *   `TEST_PGLITE_THREAD=worker`).
 * - `postgres`: a fresh database on the real PostgreSQL server (`TEST_PG_URL`, default
 *   `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.
 * - `neon`: the same, through `@neondatabase/serverless` over the local WebSocket bridge
 *   (tests/fixtures/neon_bridge.ts), as production reaches Neon.
 */
import pg from "pg";
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { openNeon } from "@troupe/runtime/neon";
import { type NeonBridge, startNeonBridge } from "./fixtures/neon_bridge.ts";
import { migrate } from "../db/migrate.ts";
import type { SqlDatabase, SqlExecutor } from "@troupe/runtime";
import type { BlobStore } from "../db/blobs/port.ts";

export const ADMIN_URL = Deno.env.get("TEST_PG_URL") ??
  "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  db: SqlDatabase;
  /** Connection string of the database (postgres target only). */
  url?: string;
  /** Opens another independent connection pool on the same database (postgres only). */
  cleanup(): Promise<void>;
}

export interface DbTarget {
  name: "pglite" | "postgres" | "neon";
  open(): Promise<TestDatabase>;
}

export const pgliteTarget: DbTarget = {
  name: "pglite",
  async open() {
    const thread = Deno.env.get("TEST_PGLITE_THREAD") === "worker" ? "worker" : "main";
    const db = await openPglite(undefined, { thread });
    await migrate(db);
    return { db, cleanup: () => db.close() };
  },
};

/** Creates an empty database on the real server and returns its URL. */
export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `troupe_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export const postgresTarget: DbTarget = {
  name: "postgres",
  async open() {
    const { url, drop } = await createPgDatabase();
    // No idle timeout: the pool runs no timer between a suite's tests.
    const db = openPostgres(url, { max: 10, idleTimeoutMs: 0 });
    await migrate(db);
    return {
      db,
      url,
      async cleanup() {
        await db.close();
        await drop();
      },
    };
  },
};

/** The WebSocket bridge, shared by the Neon databases open at once and closed with the last. */
let bridge: Promise<NeonBridge> | null = null;
let bridgeUsers = 0;

async function releaseBridge(): Promise<void> {
  if (--bridgeUsers > 0 || !bridge) return;
  const closing = bridge;
  bridge = null;
  await (await closing).close();
}

/** The Neon serverless driver through the local WebSocket bridge to the real server. */
export const neonTarget: DbTarget = {
  name: "neon",
  async open() {
    bridgeUsers++;
    try {
      bridge ??= startNeonBridge();
      const { wsProxy } = await bridge;
      const { url, drop } = await createPgDatabase();
      const db = openNeon(url, { max: 10, idleTimeoutMs: 0, wsProxy });
      await migrate(db);
      return {
        db,
        url,
        async cleanup() {
          await db.close();
          await drop();
          await releaseBridge();
        },
      };
    } catch (err) {
      await releaseBridge();
      throw err;
    }
  },
};

/** Every target; `TEST_TARGETS=pglite,postgres` narrows the set. */
export const targets: DbTarget[] = [pgliteTarget, postgresTarget, neonTarget].filter((t) =>
  !Deno.env.get("TEST_TARGETS") || Deno.env.get("TEST_TARGETS")!.split(",").includes(t.name)
);

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  { timeoutMs = 10_000, intervalMs = 20, what = "condition" } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** What `settle` needs of a runtime: reading a job, and (if it has it) hearing of changes. */
export interface JobSource<J extends { status: string }> {
  getJob(id: string): Promise<J>;
  subscribe?(fn: (jobId: string) => void): () => void;
}

/**
 * Waits until job `id` is succeeded, failed or cancelled and returns its view. A change the
 * runtime announces (`subscribe`) wakes it at once; it also reads again every `intervalMs`,
 * since a job finished by another process or a lease sweep is not announced here. A job not
 * yet readable (enqueued by a continuation still being committed) is waited for too.
 */
export async function settle<J extends { status: string }>(
  rt: JobSource<J>,
  id: string,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<J> {
  const deadline = Date.now() + timeoutMs;
  let wake: (() => void) | null = null;
  const unsubscribe = rt.subscribe?.((jobId) => {
    if (jobId === id) wake?.();
  });
  let lastError: unknown = null;
  try {
    while (true) {
      const job = await rt.getJob(id).then((j) => j, (e) => {
        lastError = e;
        return null;
      });
      if (job && TERMINAL_STATUSES.includes(job.status)) return job;
      if (Date.now() > deadline) {
        const seen = job ? `it is ${job.status}` : `reading it failed: ${lastError}`;
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for job ${id} to finish (${seen})`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, intervalMs);
      });
      clearTimeout(timer);
      wake = null;
    }
  } finally {
    unsubscribe?.();
  }
}

const TERMINAL_STATUSES = ["succeeded", "failed", "cancelled"];

/** The statuses a dataset ends in. */
export const DATASET_ENDS = ["ready", "failed"] as const;
/** The statuses a course ends in. */
export const COURSE_ENDS = ["ready", "partial", "failed"] as const;

/** A JSON body as the tests' `call` helpers return it: read field by field, unchecked. */
// deno-lint-ignore no-explicit-any
type ApiBody = any;

/**
 * Reads a resource through the API (`read`, e.g. a GET of `/api/datasets/<id>`) until its
 * body's `status` is one of `ends`, and returns that body. HTTP has no change feed, so it polls.
 */
export async function settledBody(
  read: () => Promise<{ body: ApiBody }>,
  ends: readonly string[],
  { what, timeoutMs = 30_000 }: { what: string; timeoutMs?: number },
): Promise<ApiBody> {
  let last: ApiBody = undefined;
  try {
    return await waitFor(async () => {
      const { body } = await read();
      last = body;
      return ends.includes(body?.status) ? body : null;
    }, { timeoutMs, what });
  } catch (err) {
    // What it was doing when the wait ended says where it stalled.
    throw new Error(
      `${(err as Error).message}; last read: ${JSON.stringify(last)?.slice(0, 2000)}`,
    );
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The number of rows in `table` (a name the test writes itself). */
export async function countRows(db: SqlExecutor, table: string): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
}

/**
 * The blobs a store holds: rows of `troupe_blobs` for the PostgreSQL store, files under `dir`
 * (outside its `tmp/`) for the fs store.
 */
export async function countBlobs(blobs: BlobStore, db: SqlExecutor, dir: string): Promise<number> {
  if (blobs.kind === "postgres") return await countRows(db, "troupe_blobs");
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.name === "tmp" || !e.isDirectory) continue;
    for await (const _ of Deno.readDir(`${dir}/${e.name}`)) n++;
  }
  return n;
}

/**
 * `promise`, or an error naming `what` when `ms` pass first: a test that would hang on it fails
 * instead.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A request body from a client that sent `text` and then stopped, its connection left open:
 * the stream never closes. `cancelled()` is the reason it was let go with, once it was.
 */
export function stalledBody(text: string): {
  body: ReadableStream<Uint8Array>;
  cancelled(): unknown;
} {
  let reason: unknown;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode(text));
    },
    cancel(r) {
      reason = r ?? "cancelled";
    },
  });
  return { body, cancelled: () => reason };
}

/** An event of a server-sent event stream: its name (`message` when unnamed) and JSON data. */
// deno-lint-ignore no-explicit-any
export type SseEvent = { event: string; data: any };

/** The events of an SSE text (whole blocks, separated by blank lines) that carry data. */
export function parseSse(text: string): SseEvent[] {
  return text.split("\n\n").filter((b) => b.includes("data:")).map((block) => ({
    event: /^event: (.*)$/m.exec(block)?.[1] ?? "message",
    data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!),
  }));
}

/** Reads an SSE response as it comes: `next(test)` waits for a matching event, `all` for the end. */
export function sseReader(res: Response): {
  next(test: (e: SseEvent) => boolean): Promise<SseEvent>;
  all: Promise<SseEvent[]>;
  /** Stops reading: the server sees its client go. */
  cancel(): Promise<void>;
} {
  if (res.status !== 200) throw new Error(`the event stream answered ${res.status}`);
  const events: SseEvent[] = [];
  let waiters: { test: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const all = (async () => {
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return events;
      buffer += value;
      const end = buffer.lastIndexOf("\n\n");
      if (end < 0) continue;
      for (const e of parseSse(buffer.slice(0, end))) {
        events.push(e);
        waiters = waiters.filter((w) => w.test(e) ? (w.resolve(e), false) : true);
      }
      buffer = buffer.slice(end + 2);
    }
  })();
  const next = (test: (e: SseEvent) => boolean) => {
    const seen = events.find(test);
    return seen ? Promise.resolve(seen) : new Promise<SseEvent>((resolve) => {
      waiters.push({ test, resolve });
    });
  };
  return { next, all, cancel: () => reader.cancel() };
}
