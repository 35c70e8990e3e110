/**
 * The read model of an embedded PGlite (`JobReader.start`): for a random sequence of writes to
 * the jobs table (inserts, updates of one row or many, deletes, transactions committed and rolled
 * back, a truncate, statements touching no row), with reads started before, during and after
 * each write, every read answers exactly the row the database holds once the write returned; on
 * PGlite in this thread and in a worker.
 */
import assert from "node:assert/strict";
import { openPglite } from "./drivers/pglite.ts";
import { migrateRuntime } from "./migrate.ts";
import { JobReader } from "./reader.ts";
import { tables } from "./sql/tables.ts";
import { jobView, type Row } from "./views.ts";
import type { SqlDatabase, SqlExecutor } from "./ports.ts";
import { NotFoundError } from "./errors.ts";
import { seeded } from "../../tests/hostile/input_files.ts";

const t = tables();

async function insert(db: SqlExecutor, ids: string[]): Promise<void> {
  await db.query(
    `INSERT INTO ${t.jobs} (id, actor, key, input, max_attempts)
     SELECT id, 'reader.test', id, '{}'::jsonb, 3 FROM unnest($1::text[]) AS id
     ON CONFLICT DO NOTHING`,
    [ids],
  );
}

/** What the database holds for `id` now, as `getJob` shows it (null: no row). */
async function truth(db: SqlDatabase, id: string) {
  const [row] = await db.query<Row>(`SELECT * FROM ${t.jobs} WHERE id = $1`, [id]);
  return row ? jobView(row) : null;
}

async function read(reader: JobReader, id: string) {
  try {
    return await reader.getJob(id);
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

for (const thread of ["main", "worker"] as const) {
  Deno.test(`reader: the read model answers what the database holds (PGlite, ${thread})`, async () => {
    const db = await openPglite(undefined, { thread });
    await migrateRuntime(db);
    const reader = new JobReader(db, t);
    await reader.start();
    try {
      const rnd = seeded(thread === "main" ? 7 : 11);
      const ids = Array.from({ length: 40 }, (_, i) => `job-${i}`);
      const pick = () => ids[Math.floor(rnd() * ids.length)]!;
      await insert(db, ids.slice(0, 20));
      // Many ids in one statement: notified in parts of under 8000 characters.
      const many = Array.from({ length: 600 }, (_, i) => `bulk-${String(i).padStart(40, "0")}`);
      // Ids of 2000 characters: a part over the limit notifies `*`.
      const long = Array.from({ length: 10 }, (_, i) => `long-${i}-`.padEnd(2000, "x"));
      const writes: ((db: SqlDatabase) => Promise<unknown>)[] = [
        (db) => insert(db, [pick(), pick()]),
        (db) =>
          db.query(
            `UPDATE ${t.jobs} SET status = $2, attempts = attempts + 1, progress = $3 WHERE id = $1`,
            [
              pick(),
              ["queued", "running", "completed", "failed"][Math.floor(rnd() * 4)],
              Math
                .floor(rnd() * 100),
            ],
          ),
        (db) =>
          db.query(`UPDATE ${t.jobs} SET progress = (progress + 7) % 100 WHERE id = ANY($1)`, [
            [pick(), pick(), pick()],
          ]),
        (db) => db.query(`UPDATE ${t.jobs} SET priority = priority + 1`),
        (db) => db.query(`UPDATE ${t.jobs} SET progress = 1 WHERE id = 'none'`),
        (db) => db.query(`DELETE FROM ${t.jobs} WHERE id = $1`, [pick()]),
        (db) =>
          db.transaction(async (tx) => {
            await tx.query(`UPDATE ${t.jobs} SET status = 'running' WHERE id = $1`, [pick()]);
            await insert(tx, [pick()]);
          }),
        async (db) => {
          const rolledBack = new Error("rolled back");
          await db.transaction(async (tx) => {
            await tx.query(`UPDATE ${t.jobs} SET status = 'cancelled', progress = 99`);
            throw rolledBack;
          }).catch((err) => {
            if (err !== rolledBack) throw err;
          });
        },
        async (db) => {
          await insert(db, many);
          await db.query(`DELETE FROM ${t.jobs} WHERE id = ANY($1)`, [many]);
        },
        async (db) => {
          await insert(db, long);
          await db.query(`DELETE FROM ${t.jobs} WHERE id = ANY($1)`, [long]);
        },
        async (db) => {
          if (rnd() < 0.3) {
            await db.query(`TRUNCATE ${t.jobs} CASCADE`);
            await insert(db, ids.slice(0, 10));
          }
        },
      ];
      let served = 0;
      for (let step = 0; step < 100; step++) {
        // Reads of every id before the write (so most are kept), during it, and after it.
        for (const id of ids) await read(reader, id);
        const write = writes[Math.floor(rnd() * writes.length)]!;
        const during = Array.from({ length: 3 }, () => pick()).map((id) => read(reader, id));
        await write(db);
        await Promise.all(during);
        const before = reader.modelled;
        for (const id of ids) {
          assert.deepEqual(await read(reader, id), await truth(db, id), `step ${step}, ${id}`);
        }
        served += before;
      }
      assert.ok(served > 0, "rows were answered by the read model");
    } finally {
      await reader.stop();
      await db.close();
    }
  });
}

Deno.test("reader: a statement over many rows drops only those rows from the read model", async () => {
  const db = await openPglite();
  await migrateRuntime(db);
  const reader = new JobReader(db, t);
  await reader.start();
  try {
    await insert(db, ["kept"]);
    // The first read switches the model on.
    await read(reader, "kept");
    await reader.modelReady();
    await read(reader, "kept");
    assert.equal(reader.modelled, 1);
    // 600 ids of 46 characters: 27,600 characters of ids, notified in parts.
    await insert(db, Array.from({ length: 600 }, (_, i) => `bulk-${String(i).padStart(40, "0")}`));
    assert.equal(reader.modelled, 1, "a row the statement did not touch is still kept");
    await db.query(`UPDATE ${t.jobs} SET progress = 5 WHERE id LIKE 'bulk-%' OR id = 'kept'`);
    assert.equal(reader.modelled, 0, "a row among the many it touched is dropped");
    assert.equal((await read(reader, "kept"))?.progress, 5);
    // Ids too long for a part under the limit: `*` drops every row.
    await insert(db, Array.from({ length: 10 }, (_, i) => `long-${i}-`.padEnd(2000, "x")));
    await read(reader, "kept");
    assert.equal(reader.modelled, 1);
    await db.query(`UPDATE ${t.jobs} SET progress = 6 WHERE id LIKE 'long-%'`);
    assert.equal(reader.modelled, 0);
  } finally {
    await reader.stop();
    await db.close();
  }
});

Deno.test("reader: the jobs table carries the model's triggers only once a job was read", async () => {
  const db = await openPglite();
  await migrateRuntime(db);
  const triggers = async () =>
    (await db.query<{ tgname: string }>(
      `SELECT tgname FROM pg_trigger WHERE tgrelid = '${t.jobs}'::regclass
         AND tgname LIKE 'troupe_job_rows_%' ORDER BY tgname`,
    )).map((r) => r.tgname);
  // Triggers an earlier start left in the database (an insert trigger of an older version too).
  const first = new JobReader(db, t);
  await first.start();
  await read(first, "none");
  await first.modelReady();
  await first.stop();
  await db.query(
    `CREATE TRIGGER troupe_job_rows_insert AFTER INSERT ON ${t.jobs}
     REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
     EXECUTE FUNCTION troupe_job_rows_notify('troupe_job_rows')`,
  );
  assert.equal((await triggers()).length, 4);
  const reader = new JobReader(db, t);
  try {
    await reader.start();
    assert.deepEqual(await triggers(), [], "start drops them");
    await insert(db, ["a"]);
    await db.query(`UPDATE ${t.jobs} SET progress = 3 WHERE id = 'a'`);
    assert.equal((await read(reader, "a"))?.progress, 3);
    await reader.modelReady();
    assert.deepEqual(await triggers(), [
      "troupe_job_rows_delete",
      "troupe_job_rows_truncate",
      "troupe_job_rows_update",
    ]);
    await read(reader, "a");
    assert.equal(reader.modelled, 1);
    await db.query(`UPDATE ${t.jobs} SET progress = 4 WHERE id = 'a'`);
    assert.equal(reader.modelled, 0, "a change after the switch is heard");
    assert.equal((await read(reader, "a"))?.progress, 4);
  } finally {
    await reader.stop();
    await db.close();
  }
});

Deno.test("reader: a shared database (PostgreSQL) keeps no read model", async () => {
  const db = { dialect: "postgres", shared: true } as unknown as SqlDatabase;
  const reader = new JobReader(db, t);
  await reader.start(); // issues no statement: `db` has no query to call
  assert.equal(reader.modelled, 0);
});
