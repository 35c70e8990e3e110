/**
 * Fairness between tenants on the table queue: tenant A has a backlog of chunk-like messages,
 * tenant B sends single jobs meanwhile; how long B's jobs wait, and how fast A's backlog drains.
 *
 *   deno run -A bench/fairness.ts [--n 100000] [--keys 10000] [--b 30] [--every 200]
 *     [--db postgres,pglite]
 *
 * Per database (a fresh one each): A's `--n` messages (over `--keys` keys, 500 bytes of text
 * each) are written by SQL, queued; a runtime with the default options starts; once 2,000 of
 * A's have run, B enqueues one job every `--every` ms, `--b` of them. Printed: B's wait (enqueue called →
 * handler began) p50 / p99 / max, and A's throughput (messages / time until the last of them
 * ran). Handlers do nothing: the figures are the queue's. Claims are fair across tenants by
 * default (`RuntimeOptions.tenantWeights`); claiming in plain queue order runs B's jobs after
 * A's backlog, unless every key of A is leased (then each claim walks A's backlog past them).
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import {
  defineActor,
  jsonLogger,
  Runtime,
  type SqlDatabase,
  TableQueueTransport,
} from "@troupe/runtime";
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { migrate } from "../db/migrate.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { pct } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    n: { type: "string", default: "100000" },
    keys: { type: "string", default: "10000" },
    b: { type: "string", default: "30" },
    every: { type: "string", default: "200" },
    db: { type: "string", default: "postgres,pglite" },
  },
});
const N = Number(args.n);
const KEYS = Number(args.keys);
const B = Number(args.b);
const EVERY = Number(args.every);

interface Opened {
  db: SqlDatabase;
  close(): Promise<void>;
}

const databases: Record<string, () => Promise<Opened>> = {
  pglite: async () => {
    const db = await openPglite();
    await migrate(db);
    return { db, close: () => db.close() };
  },
  postgres: async () => {
    const pg = await createPgDatabase();
    const db = openPostgres(pg.url, { max: 10 });
    await migrate(db);
    return {
      db,
      close: async () => {
        await db.close();
        await pg.drop();
      },
    };
  },
};

async function run(name: string): Promise<void> {
  const { db, close } = await databases[name]!();
  try {
    // A's backlog, written in one statement per 20,000 rows (as enqueues would write them).
    const t0 = performance.now();
    for (let from = 0; from < N; from += 20_000) {
      await db.query(
        `INSERT INTO troupe_jobs (id, actor, key, tenant_id, input, max_attempts)
         SELECT 'a-' || lpad(i::text, 7, '0'), 'bench.chunk', 'chunk:' || (i % $3::int), 'tenant-a',
           jsonb_build_object('i', i, 'text', repeat('x', 500)), 3
         FROM generate_series($1::int, $2::int) AS i`,
        [from, Math.min(N, from + 20_000) - 1, KEYS],
      );
    }
    const queuedMs = performance.now() - t0;

    const seen = new Uint8Array(N);
    let done = 0;
    let lastA = 0;
    const began = new Map<number, number>();
    const enqueued = new Map<number, number>();
    let nextB = Infinity;
    let rt: Runtime | null = null;
    const sends: Promise<unknown>[] = [];
    // B's enqueues, when due: from a timer and from A's handler. On PGlite the claim loop leaves
    // timers no turn while A's backlog drains (PGlite answers on this thread), as it would a
    // request's handler; A's handlers still run, so they send B's jobs when due.
    const sendB = () => {
      const now = performance.now();
      if (!rt || enqueued.size >= B || now < nextB) return;
      const j = enqueued.size;
      enqueued.set(j, now);
      nextB = now + EVERY;
      sends.push(rt.enqueue(single, { j }, { tenantId: "tenant-b" }));
    };
    const chunk = defineActor({
      name: "bench.chunk",
      input: z.object({ i: z.number().int(), text: z.string() }),
      key: (m) => `chunk:${m.i % KEYS}`,
      handler: (m) => {
        sendB();
        if (!seen[m.i]) {
          seen[m.i] = 1;
          done++;
          lastA = performance.now();
          if (done === 2000) nextB = lastA; // B begins once 2,000 of A's messages have run.
        }
      },
    });
    const single = defineActor({
      name: "bench.single",
      input: z.object({ j: z.number().int() }),
      key: (m) => `single:${m.j}`,
      handler: (m) => {
        if (!began.has(m.j)) began.set(m.j, performance.now());
      },
    });
    rt = new Runtime({
      db,
      actors: [chunk, single],
      transport: new TableQueueTransport(db),
      logger: jsonLogger("warn"),
    });
    const start = performance.now();
    const starting = rt.start();
    const timer = setInterval(sendB, 10);
    const deadline = performance.now() + 600_000;
    while ((done < N || began.size < B) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    clearInterval(timer);
    await starting;
    await Promise.all(sends);
    await rt.stop(5000);
    const waits = [...enqueued].filter(([j]) => began.has(j))
      .map(([j, at]) => began.get(j)! - at);
    const seconds = (lastA - start) / 1000;
    console.log(
      `${name.padEnd(8)}  B waits (ms, ${waits.length}/${B} ran): p50 ${
        pct(waits, 0.5).toFixed(0)
      }` +
        `  p99 ${pct(waits, 0.99).toFixed(0)}  max ${Math.max(...waits).toFixed(0)}` +
        `  |  A: ${done}/${N} in ${seconds.toFixed(1)} s = ${(done / seconds).toFixed(0)} msg/s` +
        `  (backlog written in ${(queuedMs / 1000).toFixed(1)} s)`,
    );
  } finally {
    await close();
  }
}

console.log(`fairness: A ${N} queued over ${KEYS} keys, B ${B} single jobs every ${EVERY} ms`);
for (const name of args.db!.split(",")) await run(name);
