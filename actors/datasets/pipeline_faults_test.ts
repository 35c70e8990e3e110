/**
 * The dataset pipeline (split, chunks, fan-in, merge) under the fault kit: every one of its
 * messages delivered twice, crashed before and after its commit, its lease lost mid-handler,
 * delivered concurrently, and the upload's messages delayed: the same dataset each time.
 */
import assert from "node:assert/strict";
import { assertEffectivelyOnce, type TestWorld } from "@troupe/runtime/testing";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import { MIGRATION_SETS } from "../../db/migrate.ts";
import { datasetOptions } from "./options.ts";
import { datasetActors } from "./pipeline.ts";
import { insertDataset, rowsTable } from "./store.ts";
import { localDatasetAdapters } from "../../tests/local_adapters.ts";

Deno.test({
  name: "dataset pipeline: a CSV of several chunks ingests the same under every fault",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-faults-" });
  try {
    const blobs = new FsBlobStore(dir);
    const lines = ["id,city,score"];
    for (let i = 0; i < 120; i++) lines.push(`${i},city-${i % 7},${(i * 37) % 101}.5`);
    const put = await blobs.put(new Blob([lines.join("\n") + "\n"]).stream());
    const datasetId = "7d0d8a52-2f4e-4f0e-9a39-6c7e1f0c1a01";
    const options = datasetOptions.parse({ format: "csv" });
    const { effects } = await assertEffectivelyOnce({
      actors: (db) =>
        datasetActors({
          ...localDatasetAdapters(),
          db,
          blobs,
          chunkBytes: 512,
          splitStepChunks: 2,
        }),
      migrations: MIGRATION_SETS,
      inputs: [{
        actor: "dataset.split",
        input: { datasetId },
        options: {
          effect: (tx, jobId) =>
            insertDataset(tx, {
              id: datasetId,
              tenantId: "t-faults",
              name: "cities",
              format: "csv",
              options,
              sha256: put.sha256,
              size: put.size,
              jobId,
            }),
        },
      }],
      effectsOf: async (world: TestWorld) => ({
        dataset: await world.db.query(
          `SELECT status, chunk_count, chunks_done, row_count::int AS row_count,
             skipped_rows::int AS skipped_rows, columns, row_errors, error
           FROM troupe_datasets WHERE id = $1`,
          [datasetId],
        ),
        rows: await world.db.query(`SELECT * FROM ${rowsTable(datasetId)} ORDER BY _row`),
      }),
      // One upload: nothing to reorder.
      faults: [
        "deliverTwice",
        "deliverConcurrently",
        "crashBeforeCommit",
        "crashAfterCommit",
        "loseLeaseMidHandler",
        "delay",
      ],
    });
    const { dataset, rows } = effects as {
      dataset: { status: string; chunk_count: number; row_count: number }[];
      rows: unknown[];
    };
    assert.equal(dataset[0]?.status, "ready");
    assert.ok(dataset[0].chunk_count > 2, `${dataset[0].chunk_count} chunks`);
    assert.equal(dataset[0].row_count, 120);
    assert.equal(rows.length, 120);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
