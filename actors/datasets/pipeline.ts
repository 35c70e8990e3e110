/**
 * The dataset pipeline, as actors (one short message per step, each idempotent):
 *
 * 1. `dataset.split` (key `dataset:<id>`): streams the stored file, cuts it into ~1 MiB
 *    chunks at record boundaries, reads the header and types from chunk 0, creates the rows
 *    table and fans out one `dataset.chunk` message per chunk. It works in steps of 32 chunks:
 *    each step sends its chunks and the next step (resuming at the boundary where it stopped),
 *    so chunks run while the rest is cut; the last step sets the chunk count.
 * 2. `dataset.chunk` (key `dataset:<id>:<n>`, chunks run in parallel): reads its byte range,
 *    parses, cleans, infers types, inserts its rows with deterministic ids (`_row` = chunk
 *    and position: a redelivered chunk adds nothing) and stores its mergeable profile, all
 *    in the message's transaction; then tells the dataset.
 * 3. `dataset.chunk-done` (key `dataset:<id>`: one at a time per dataset): counts finished
 *    chunks; the last one sends `dataset.merge`. A chunk that fails for good reports here
 *    too (`onDeadLetter`), and the dataset fails with its error: no fan-in waits forever.
 * 4. `dataset.merge` (key `dataset:<id>`): merges the chunk profiles, converts the text
 *    columns to their merged types, and marks the dataset ready.
 *
 * Bad input (a header over the column or length limit, JSON keys past the column limit, a
 * bad row under the `fail` policy, a value PostgreSQL refuses...) ends the dataset `failed`
 * with its own code at once: the handler that meets it marks the dataset and throws
 * `InputError`, which the runtime does not retry (the same bytes would fail the same way).
 *
 * Memory: one chunk (plus its parsed rows) per running chunk message; the file is never held.
 */
import { abortedActor } from "./actors/aborted.ts";
import { chunkActor } from "./actors/chunk.ts";
import { chunkDoneActor } from "./actors/chunk_done.ts";
import { datasetContext, type DatasetPipelineOptions } from "./actors/_context.ts";
import { mergeActor } from "./actors/merge.ts";
import { splitActor } from "./actors/split.ts";
import { datasetReportActor } from "./report_job.ts";

export type { DatasetPipelineOptions };

/** The dataset pipeline's actors, one file each under `actors/`. */
export function datasetActors(o: DatasetPipelineOptions) {
  const c = datasetContext(o);
  return [
    splitActor(c),
    chunkActor(c),
    chunkDoneActor(c),
    mergeActor(c),
    abortedActor(c),
    datasetReportActor({ db: o.db, blobs: o.blobs }),
  ];
}
