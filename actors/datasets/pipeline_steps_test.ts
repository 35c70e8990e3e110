/**
 * The dataset pipeline in steps: with a budget so small that every delivery takes one item, the
 * split (a JSON array's as a CSV's) takes a delivery a chunk and the merge a delivery a chunk
 * (and one to convert the columns), and the dataset ends exactly as with no budget; under every
 * fault of the fault kit the stepped pipeline loses and repeats nothing.
 */
import assert from "node:assert/strict";
import { assertEffectivelyOnce, type TestWorld, testWorld } from "@troupe/runtime/testing";
import type { SqlDatabase } from "@troupe/runtime";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { MIGRATION_SETS } from "../../db/migrate.ts";
import { localDatasetAdapters } from "../../tests/local_adapters.ts";
import { type DatasetFormat, datasetOptions } from "./options.ts";
import { datasetActors } from "./pipeline.ts";
import { insertDataset, rowsTable } from "./store.ts";

const DATASET = "0190a4b2-7c1d-7e4f-8a2b-3c4d5e6f7a90";
const ROWS = 400;

/** Rows of mixed types: integers, floats with nulls, text with commas and quotes, dates. */
function records(): Record<string, unknown>[] {
  return Array.from({ length: ROWS }, (_, i) => ({
    id: i,
    city: `city-${i % 13}, "${i % 3}"`,
    score: i % 11 === 0 ? null : (i * 37) % 101 + 0.5,
    day: `2024-0${1 + (i % 9)}-1${i % 10}`,
    // A few bad rows to report.
    ...(i % 97 === 5 ? { score: "n/a?" } : {}),
  }));
}

const FILES: Record<"csv" | "json", () => string> = {
  csv: () => {
    const q = (v: unknown) => v === null ? "" : `"${String(v).replaceAll('"', '""')}"`;
    return ["id,city,score,day", ...records().map((r) => Object.values(r).map(q).join(","))]
      .join("\n") + "\n";
  },
  json: () => "[\n" + records().map((r) => JSON.stringify(r)).join(",\n") + "\n]\n",
};

async function withFile<T>(
  format: "csv" | "json",
  fn: (blobs: BlobStore, put: { sha256: string; size: number }) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-dataset-steps-" });
  try {
    const blobs = new FsBlobStore(dir);
    const put = await blobs.put(new Blob([FILES[format]()]).stream());
    return await fn(blobs, put);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function splitInput(format: DatasetFormat, put: { sha256: string; size: number }) {
  const options = datasetOptions.parse({ format });
  return {
    actor: "dataset.split",
    input: { datasetId: DATASET },
    options: {
      effect: (tx: Parameters<typeof insertDataset>[0], jobId: string) =>
        insertDataset(tx, {
          id: DATASET,
          tenantId: "t-steps",
          name: "steps",
          format,
          options,
          sha256: put.sha256,
          size: put.size,
          jobId,
        }),
    },
  };
}

function actors(blobs: BlobStore, deliveryBudgetMs: number) {
  return (db: SqlDatabase) =>
    datasetActors({
      ...localDatasetAdapters(),
      db,
      blobs,
      chunkBytes: 2048,
      mergePage: 1,
      deliveryBudgetMs,
    });
}

/** What an ingest leaves: the dataset (with its merged profiles) and its rows. */
async function ingested(world: Pick<TestWorld, "db">) {
  return {
    dataset: await world.db.query(
      `SELECT status, chunk_count, chunks_done, row_count::int AS row_count,
         skipped_rows::int AS skipped_rows, columns, row_errors, error
       FROM troupe_datasets WHERE id = $1`,
      [DATASET],
    ),
    rows: await world.db.query(`SELECT * FROM ${rowsTable(DATASET)} ORDER BY _row`),
  };
}

/** Ingests the file with `budgetMs`: what it made, and the deliveries of each stepped actor. */
async function ingest(
  blobs: BlobStore,
  put: { sha256: string; size: number },
  format: DatasetFormat,
  budgetMs: number,
) {
  const world = await testWorld({ actors: actors(blobs, budgetMs), migrations: MIGRATION_SETS });
  try {
    const start = splitInput(format, put);
    await world.send(start.actor, start.input, start.options);
    await world.settle({ timeoutMs: 60_000 });
    const jobs = await world.db.query<{ actor: string; n: number }>(
      `SELECT actor, count(*)::int AS n FROM troupe_jobs
       WHERE actor IN ('dataset.split', 'dataset.merge') AND status = 'succeeded'
       GROUP BY actor ORDER BY actor`,
    );
    return {
      made: await ingested(world),
      jobs: Object.fromEntries(jobs.map((j) => [j.actor, j.n])),
      state: await world.state(`dataset:${DATASET}`),
    };
  } finally {
    await world.close();
  }
}

for (const format of ["csv", "json"] as const) {
  Deno.test({
    name: `dataset pipeline (${format}): a delivery per chunk ingests what one delivery does`,
  }, async () => {
    await withFile(format, async (blobs, put) => {
      const whole = await ingest(blobs, put, format, 0);
      const stepped = await ingest(blobs, put, format, 1);
      const d = whole.made.dataset[0] as { status: string; chunk_count: number; row_count: number };
      assert.equal(d.status, "ready");
      assert.ok(d.chunk_count >= 8, `${d.chunk_count} chunks`);
      assert.equal(whole.made.rows.length, d.row_count);
      assert.ok(d.row_count >= ROWS - 5, `${d.row_count} rows`);
      // Without a budget: 32 chunks a split step, the merge in one.
      assert.deepEqual(whole.jobs, {
        "dataset.merge": 1,
        "dataset.split": Math.ceil(d.chunk_count / 32),
      });
      // A chunk a split step; a chunk a merge step, then the conversion.
      assert.deepEqual(stepped.jobs, {
        "dataset.merge": d.chunk_count + 1,
        "dataset.split": d.chunk_count,
      });
      assert.deepEqual(stepped.made, whole.made);
      assert.deepEqual(stepped.state, {});
    });
  });
}

Deno.test({
  name:
    "dataset pipeline: a JSON array split and merged in steps, under every fault, loses and repeats nothing",
}, async () => {
  await withFile("json", async (blobs, put) => {
    const { effects } = await assertEffectivelyOnce({
      actors: actors(blobs, 1),
      migrations: MIGRATION_SETS,
      inputs: [splitInput("json", put)],
      effectsOf: ingested,
      faults: [
        "deliverTwice",
        "deliverConcurrently",
        "crashBeforeCommit",
        "crashAfterCommit",
        "loseLeaseMidHandler",
      ],
    });
    const made = effects as Awaited<ReturnType<typeof ingested>>;
    assert.equal((made.dataset[0] as { status: string }).status, "ready");
    assert.ok(made.rows.length >= ROWS - 5, `${made.rows.length} rows`);
  });
});
