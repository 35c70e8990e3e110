/**
 * The runtime on a schema other than `public` (`RuntimeOptions.schema`), on PGlite and on the
 * PostgreSQL server: the runtime's tables exist only in that schema, so every query of the
 * runtime and of the table queue must name it.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineActor,
  type GroupOutcome,
  groupOutcomeSchema,
  jsonLogger,
  message,
  migrateRuntime,
  Runtime,
  type SqlDatabase,
  TableQueueTransport,
} from "@troupe/runtime";
import { tables } from "../../actors/runtime/sql/tables.ts";
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { createPgDatabase, waitFor } from "../harness.ts";

const SCHEMA = "troupe_lib";

const ok = defineActor({
  name: "schema.ok",
  input: z.object({ n: z.number() }),
  initialState: (): { last: number | null } => ({ last: null }),
  handler: (input, ctx) => {
    ctx.setState({ last: input.n });
    return { doubled: input.n * 2 };
  },
});

const broken = defineActor({
  name: "schema.broken",
  input: z.object({ n: z.number() }),
  retries: 1,
  backoff: { baseMs: 10, maxMs: 20, jitter: 0 },
  handler: () => {
    throw new Error("always fails");
  },
});

const fannedIn = defineActor({
  name: "schema.fanned_in",
  input: z.object({ group: groupOutcomeSchema }),
  handler: (input): { status: GroupOutcome["status"]; parts: number } => ({
    status: input.group.status,
    parts: input.group.parts.length,
  }),
});

async function scenario(db: SqlDatabase): Promise<void> {
  const applied = await migrateRuntime(db, { schema: SCHEMA });
  assert.ok(applied.some((m) => m.tag.includes("groups")), "the groups table is in the set");
  const publicTables = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM information_schema.tables
     WHERE table_schema = 'public' AND table_name LIKE 'troupe_%'`,
  );
  assert.equal(publicTables[0]?.n, 0, "the runtime's tables must exist only in the schema");
  // A second call finds the schema up to date.
  assert.deepEqual(await migrateRuntime(db, { schema: SCHEMA }), []);
  const runtime = new Runtime({
    db,
    actors: [ok, broken, fannedIn],
    transport: new TableQueueTransport(db, { pollMs: 50, schema: SCHEMA }),
    logger: jsonLogger("silent"),
    schema: SCHEMA,
  });
  await runtime.start();
  try {
    const { job } = await runtime.enqueue("schema.ok", { n: 21 });
    const done = await waitFor(async () => {
      const j = await runtime.getJob(job.id);
      return j.status === "succeeded" ? j : null;
    }, { timeoutMs: 20_000 });
    assert.deepEqual(done.result, { doubled: 42 });
    assert.equal(done.attempts, 1);

    const failing = await runtime.enqueue("schema.broken", { n: 1 });
    const failed = await waitFor(async () => {
      const j = await runtime.getJob(failing.job.id);
      return j.status === "failed" ? j : null;
    }, { timeoutMs: 20_000 });
    assert.equal(failed.attempts, 2);
    const dead = await runtime.listDeadLetters({ actor: "schema.broken" });
    assert.equal(dead.items.length, 1);
    assert.equal(dead.items[0]!.jobId, failing.job.id);

    const replayed = await runtime.replay(dead.items[0]!.id);
    assert.equal(replayed.replayOf, failing.job.id);
    await waitFor(async () => (await runtime.getJob(replayed.id)).status === "failed", {
      timeoutMs: 20_000,
    });
    await assert.rejects(() => runtime.replay(dead.items[0]!.id));

    const t = tables(SCHEMA);
    const [counts] = await db.query<{ jobs: number; dead: number; state: unknown }>(
      `SELECT (SELECT count(*)::int FROM ${t.jobs}) AS jobs,
         (SELECT count(*)::int FROM ${t.deadLetters}) AS dead,
         (SELECT state FROM ${t.actorState} WHERE key = 'schema.ok') AS state`,
    );
    assert.equal(counts?.jobs, 3);
    assert.equal(counts?.dead, 2);
    assert.deepEqual(counts?.state, { last: 21 });
    const health = await runtime.health();
    assert.equal(health.deadLetters, 1);
    assert.equal(health.queued, 0);

    // Groups count their parts in the schema's troupe_groups; a failed part fails the group.
    const fanIn = async (parts: Parameters<Runtime["enqueueGroup"]>[0]) => {
      const { groupId, continuationId } = await runtime.enqueueGroup(parts, { actor: fannedIn });
      const then = await waitFor(async () => {
        const j = await runtime.getJob(continuationId).catch(() => null);
        return j?.status === "succeeded" ? j : null;
      }, { timeoutMs: 20_000 });
      const [row] = await db.query<{ status: string; remaining: number }>(
        `SELECT status, remaining FROM ${t.groups} WHERE id = $1`,
        [groupId],
      );
      return { result: then.result, row };
    };
    const good = await fanIn([message(ok, { n: 1 }), message(ok, { n: 2 })]);
    assert.deepEqual(good.result, { status: "succeeded", parts: 2 });
    assert.deepEqual(good.row, { status: "succeeded", remaining: 0 });
    const bad = await fanIn([message(ok, { n: 3 }), message(broken, { n: 4 })]);
    assert.deepEqual(bad.result, { status: "failed", parts: 2 });
    assert.equal(bad.row?.status, "failed");
  } finally {
    await runtime.stop(2000);
  }
}

Deno.test("schema: names are qualified outside public, unchanged in public", () => {
  const pub = tables();
  assert.equal(pub.jobs, "troupe_jobs");
  assert.equal(pub.jobsChannel, "troupe_jobs");
  assert.equal(pub.cancelChannel, "troupe_cancel");
  const other = tables("tenant_a");
  assert.equal(other.jobs, `"tenant_a"."troupe_jobs"`);
  assert.equal(other.cancelChannel, "troupe_cancel_tenant_a");
  assert.ok(tables("a".repeat(63)).cancelChannel.length <= 63);
  for (const bad of ["Public", "1abc", "a-b", 'x"; DROP TABLE y; --', "", "a".repeat(64)]) {
    assert.throws(() => tables(bad), TypeError);
  }
  assert.throws(
    () =>
      new Runtime({
        db: {} as SqlDatabase,
        actors: [],
        transport: new TableQueueTransport({} as SqlDatabase),
        schema: "Bad-Name",
      }),
    TypeError,
  );
});

Deno.test({
  name: "schema [pglite]: enqueue, retries, dead letter, replay on a non-public schema",
  async fn() {
    const db = await openPglite();
    try {
      await scenario(db);
    } finally {
      await db.close();
    }
  },
});

Deno.test({
  name: "schema [postgres]: enqueue, retries, dead letter, replay on a non-public schema",
  async fn() {
    const { url, drop } = await createPgDatabase();
    const db = openPostgres(url, { max: 4 });
    try {
      await scenario(db);
    } finally {
      await db.close();
      await drop();
    }
  },
});
