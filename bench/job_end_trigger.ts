/**
 * What the end-message trigger (runtime migration `0008_job_end`) costs the statements that
 * move jobs: batches of job rows are claimed (queued → running) and ended (→ succeeded) with
 * the trigger in place and with it dropped, interleaved, on one database. No row has an end
 * message: this is the cost every job pays for the feature.
 *
 *   deno run -A bench/job_end_trigger.ts [--rows 20000] [--batch 200] [--rounds 5] [--db postgres,pglite-mem]
 */
import { parseArgs } from "node:util";
import type { SqlDatabase } from "@troupe/runtime";
import { openPglite } from "@troupe/runtime/pglite";
import { openPostgres } from "@troupe/runtime/postgres";
import { migrate } from "../db/migrate.ts";
import { createPgDatabase } from "../tests/harness.ts";
import { median } from "./stats.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rows: { type: "string", default: "20000" },
    batch: { type: "string", default: "200" },
    rounds: { type: "string", default: "5" },
    db: { type: "string", default: "postgres,pglite-mem" },
  },
});
const rows = Number(args.rows), batch = Number(args.batch), rounds = Number(args.rounds);

const TRIGGER = `CREATE TRIGGER "troupe_jobs_ended" AFTER UPDATE OF "status" ON "troupe_jobs"
  FOR EACH ROW WHEN (NEW.on_end IS NOT NULL AND OLD.status IN ('queued', 'running')
    AND NEW.status IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION "troupe_job_ended"()`;

/** Rows moved per second: every row claimed then ended, `batch` rows a statement. */
async function round(db: SqlDatabase, tag: string): Promise<number> {
  await db.query("DELETE FROM troupe_jobs");
  await db.query(
    `INSERT INTO troupe_jobs (id, actor, key, input, max_attempts)
     SELECT $1 || '-' || g, 'bench', 'k' || g, '{}', 3 FROM generate_series(1, $2) g`,
    [tag, rows],
  );
  const began = performance.now();
  for (let i = 0; i < rows; i += batch) {
    const ids = Array.from({ length: Math.min(batch, rows - i) }, (_, k) => `${tag}-${i + k + 1}`);
    await db.query(
      `UPDATE troupe_jobs SET status = 'running', attempts = attempts + 1 WHERE id = ANY($1)`,
      [ids],
    );
    await db.query(
      `UPDATE troupe_jobs SET status = 'succeeded', finished_at = now() WHERE id = ANY($1)`,
      [ids],
    );
  }
  return rows / ((performance.now() - began) / 1000);
}

for (const kind of args.db.split(",")) {
  let db: SqlDatabase;
  let drop = async () => {};
  if (kind === "postgres") {
    const made = await createPgDatabase();
    db = openPostgres(made.url, { max: 2 });
    drop = made.drop;
  } else db = await openPglite();
  await migrate(db);
  const with_: number[] = [], without: number[] = [];
  for (let r = 0; r < rounds; r++) {
    with_.push(await round(db, `w${r}`));
    await db.query(`DROP TRIGGER "troupe_jobs_ended" ON "troupe_jobs"`);
    without.push(await round(db, `o${r}`));
    await db.query(TRIGGER);
  }
  const f = (n: number) => Math.round(n).toLocaleString("en");
  console.log(
    `${kind}: rows/s with the trigger ${f(median(with_))}, without ${f(median(without))} ` +
      `(medians of ${rounds}; with: ${with_.map(f).join(", ")}; without: ${
        without.map(f).join(", ")
      })`,
  );
  await db.close();
  await drop();
}
