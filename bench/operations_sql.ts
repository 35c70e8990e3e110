/**
 * The operations SQL on PostgreSQL, 100,000 queued jobs over 256 keys (a tenth of them of a
 * paused actor): the table queue's candidate query with paused actors taken out
 * (`sql/claim_jobs.ts`) against the same query without the pause filter; then, with `--n` more
 * jobs finished within the hour, `Runtime.actorStats` (the actors page) and `Runtime.workers`.
 *
 *   deno run -A bench/operations_sql.ts [--n 100000] [--repeat 200]
 */
import { parseArgs } from "node:util";
import { jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { openPostgres } from "@troupe/runtime/postgres";
import { migrate } from "../db/migrate.ts";
import { createPgDatabase } from "../tests/harness.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "100000" }, repeat: { type: "string", default: "200" } },
});
const N = Number(args.n);
const REPEAT = Number(args.repeat);

const { url, drop } = await createPgDatabase();
const db = openPostgres(url, { max: 2 });
try {
  await migrate(db);
  await db.query(
    `INSERT INTO troupe_jobs (id, actor, key, input, max_attempts)
     SELECT 'j' || lpad(g::text, 8, '0'), CASE WHEN g % 10 = 0 THEN 'paused' ELSE 'a' END,
       'k' || (g % 256), '{}', 3
     FROM generate_series(1, $1::int) g`,
    [N],
  );
  await db.query(`INSERT INTO troupe_actor_pauses (actor) VALUES ('paused')`);
  await db.query("ANALYZE");
  const filters: [string, string][] = [
    ["no pause filter", "j.actor = ANY($1::text[])"],
    [
      "pause filter (claim_jobs.ts)",
      `j.actor = ANY(ARRAY(SELECT a FROM unnest($1::text[]) AS a
         WHERE NOT EXISTS (SELECT 1 FROM troupe_actor_pauses p WHERE p.actor = a)))`,
    ],
  ];
  for (const [name, filter] of filters) {
    const sql = `SELECT j.id, j.key, j.actor FROM troupe_jobs j
      WHERE j.status = 'queued' AND j.run_at <= now() AND ${filter}
        AND NOT EXISTS (
          SELECT 1 FROM troupe_actor_state s WHERE s.key = j.key AND s.lease_until > now())
      ORDER BY j.priority DESC NULLS LAST, j.run_at, j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED`;
    const times: number[] = [];
    let plan = "";
    for (let i = 0; i < REPEAT; i++) {
      await db.transaction(async (tx) => {
        await tx.query(
          "SELECT set_config('enable_sort', 'off', true), " +
            "set_config('enable_bitmapscan', 'off', true)",
        );
        const rows = await tx.query<{ "QUERY PLAN": string }>(`EXPLAIN ANALYZE ${sql}`, [
          ["a", "paused"],
          256,
        ]);
        const lines = rows.map((r) => r["QUERY PLAN"]);
        times.push(Number(/Execution Time: ([\d.]+)/.exec(lines.at(-1) ?? "")?.[1]));
        plan ||= lines.filter((l) => /Index Scan|Filter|InitPlan/.test(l)).join("\n");
      });
    }
    times.sort((a, b) => a - b);
    console.log(
      `${name}: median ${times[times.length >> 1]!.toFixed(3)} ms, ` +
        `p90 ${times[Math.floor(times.length * 0.9)]!.toFixed(3)} ms over ${REPEAT}\n${plan}\n`,
    );
  }
  await db.query(
    `INSERT INTO troupe_jobs (id, actor, key, input, max_attempts, status, started_at,
       finished_at, run_ms, attempts)
     SELECT 'f' || lpad(g::text, 8, '0'), 'actor' || (g % 20), 'k' || (g % 256), '{}', 3,
       CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'succeeded' END,
       now() - make_interval(secs => g % 3500), now() - make_interval(secs => g % 3500),
       (random() * 200)::int, 1
     FROM generate_series(1, $1::int) g`,
    [N],
  );
  await db.query(
    `UPDATE troupe_jobs SET run_at = now() + interval '1 hour' WHERE id LIKE 'j%' AND actor = 'a'
       AND right(id, 2) = '01'`,
  );
  await db.query("ANALYZE");
  const runtime = new Runtime({
    db,
    actors: [],
    transport: new TableQueueTransport(db),
    logger: jsonLogger("silent"),
  });
  for (
    const [name, run] of [
      ["actorStats (last hour, cap 20,000)", () => runtime.actorStats()],
      ["workers (limit 100)", () => runtime.workers()],
    ] as const
  ) {
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const began = performance.now();
      await run();
      times.push(performance.now() - began);
    }
    times.sort((a, b) => a - b);
    console.log(`${name}: median ${times[10]!.toFixed(1)} ms over 20`);
  }
} finally {
  await db.close();
  await drop();
}
