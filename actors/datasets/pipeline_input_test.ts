/**
 * Bad input in the dataset pipeline, on a real runtime (PGlite, files on disk, chunks parsed in
 * a worker): each permanent fault of the file ends the dataset `failed` with its own code, and
 * the handler that met it throws `InputError` with that code on its first attempt, so that the
 * runtime neither retries it nor dead-letters it. Files come in as stored blobs, as if the
 * upload's own header check had been passed (or could not see the fault: JSON, NDJSON).
 */
import assert from "node:assert/strict";
import {
  type AnyActor,
  InputError,
  jsonLogger,
  Runtime,
  TableQueueTransport,
} from "@troupe/runtime";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import { pgliteTarget, type TestDatabase, waitFor } from "../../tests/harness.ts";
import {
  disjointKeysNdjson,
  millionColumnCsv,
  wideCsv,
  wideNdjson,
} from "../../tests/hostile/input_files.ts";
import { ChunkProcessor } from "./chunk_work.ts";
import { datasetOptions } from "./options.ts";
import { datasetActors } from "./pipeline.ts";
import { insertDataset } from "./store.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;

interface Thrown {
  datasetId: string;
  actor: string;
  attempt: number;
  err: unknown;
}

interface World {
  tdb: TestDatabase;
  runtime: Runtime;
  blobs: FsBlobStore;
  /** What the dataset handlers threw, in order. */
  thrown: Thrown[];
  close(): Promise<void>;
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-input-" });
    const tdb = await pgliteTarget.open();
    const blobs = new FsBlobStore(dir);
    const processor = new ChunkProcessor(1);
    const thrown: Thrown[] = [];
    // The real actors, each handler watched for what it throws.
    const actors: AnyActor[] = (datasetActors({
      db: tdb.db,
      blobs,
      processor,
      chunkBytes: 16 * 1024,
      maxHeaderBytes: 64 * 1024,
    }) as AnyActor[]).map((def) => ({
      ...def,
      handler: async (input: unknown, ctx: { attempt: number }) => {
        try {
          return await def.handler(input, ctx as never);
        } catch (err) {
          const { datasetId } = input as { datasetId: string };
          thrown.push({ datasetId, actor: def.name, attempt: ctx.attempt, err });
          throw err;
        }
      },
    }));
    const runtime = new Runtime({
      db: tdb.db,
      actors,
      transport: new TableQueueTransport(tdb.db, { pollMs: 20 }),
      logger: jsonLogger("silent"),
    });
    await runtime.start();
    return {
      tdb,
      runtime,
      blobs,
      thrown,
      async close() {
        await runtime.stop();
        processor.close();
        await tdb.cleanup();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

/** Stores `file` and starts its dataset; resolves with the dataset once it is ready or failed. */
async function ingest(
  file: string | ReadableStream<Uint8Array>,
  options: Record<string, unknown>,
): Promise<{ id: string; status: string; error: { code: string; line?: number } | null }> {
  const w = await open();
  const body = typeof file === "string" ? new Blob([file]).stream() : file;
  const put = await w.blobs.put(body);
  const datasetId = crypto.randomUUID();
  const parsed = datasetOptions.parse(options);
  await w.runtime.enqueue("dataset.split", { datasetId }, {
    effect: (tx, jobId) =>
      insertDataset(tx, {
        id: datasetId,
        tenantId: "t-input",
        name: "hostile",
        format: parsed.format,
        options: parsed,
        sha256: put.sha256,
        size: put.size,
        jobId,
      }),
  });
  return await waitFor(async () => {
    const [d] = await w.tdb.db.query<
      { id: string; status: string; error: { code: string; line?: number } | null }
    >("SELECT id, status, error FROM troupe_datasets WHERE id = $1", [datasetId]);
    return d && (d.status === "ready" || d.status === "failed") ? d : null;
  }, { timeoutMs: 60_000, what: `dataset ${datasetId}` });
}

/** The errors thrown for dataset `id` since `from`, as `actor code attempt`. */
async function inputErrors(id: string, from: number): Promise<string[]> {
  const w = await open();
  return w.thrown.slice(from).filter((t) => t.datasetId === id).map(({ actor, attempt, err }) =>
    err instanceof InputError ? `${actor} ${err.code} ${attempt}` : `${actor} ${String(err)}`
  );
}

async function expectInputFailure(
  file: string | ReadableStream<Uint8Array>,
  options: Record<string, unknown>,
  actor: string,
  code: string,
): Promise<{ error: { code: string; line?: number } | null }> {
  const w = await open();
  const from = w.thrown.length;
  const d = await ingest(file, options);
  assert.equal(d.status, "failed");
  assert.equal(d.error?.code, code, JSON.stringify(d.error));
  // One InputError a handler that met the fault (chunks running at once may each meet it),
  // each on its first attempt: no retry redid the work.
  // The throw follows the handler's mark of the dataset.
  const errors = await waitFor(async () => {
    const seen = await inputErrors(d.id, from);
    return seen.length ? seen : null;
  }, { what: "an InputError" });
  assert.deepEqual(errors, errors.map(() => `${actor} ${code} 1`));
  return d;
}

Deno.test(
  { name: "pipeline: a CSV of 2,000 columns fails TOO_MANY_COLUMNS in the split", ...opts },
  async () => {
    await expectInputFailure(
      wideCsv(2000, { rows: 3 }),
      { format: "csv" },
      "dataset.split",
      "TOO_MANY_COLUMNS",
    );
  },
);

Deno.test({
  name: "pipeline: a CSV of 1,000,000 columns fails TOO_MANY_COLUMNS in seconds, not minutes",
  ...opts,
}, async () => {
  const started = performance.now();
  await expectInputFailure(
    millionColumnCsv(),
    { format: "csv" },
    "dataset.split",
    "TOO_MANY_COLUMNS",
  );
  // Generous: scanning the header takes milliseconds; parsing a million columns would not.
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 20, `${seconds.toFixed(1)} s`);
});

Deno.test(
  { name: "pipeline: a header line past maxHeaderBytes fails HEADER_TOO_LONG", ...opts },
  async () => {
    const csv = `${"x".repeat(70 * 1024)},y\n1,2\n`;
    await expectInputFailure(csv, { format: "csv" }, "dataset.split", "HEADER_TOO_LONG");
  },
);

Deno.test({
  name: "pipeline: NDJSON records of 1,200 keys fail TOO_MANY_COLUMNS in a chunk",
  ...opts,
}, async () => {
  await expectInputFailure(
    wideNdjson(1200),
    { format: "ndjson" },
    "dataset.chunk",
    "TOO_MANY_COLUMNS",
  );
});

Deno.test({
  name: "pipeline: NDJSON chunks whose keys add up past the limit fail TOO_MANY_COLUMNS",
  ...opts,
}, async () => {
  // 6 records of 300 keys of their own, each in a chunk of its own (padded past 16 KiB):
  // every chunk alone is narrow, the table would get 1,800 columns.
  const ndjson = disjointKeysNdjson(6, 300, 20 * 1024);
  await expectInputFailure(ndjson, { format: "ndjson" }, "dataset.chunk", "TOO_MANY_COLUMNS");
});

Deno.test({
  name: "pipeline: a bad row under errorPolicy=fail fails BAD_ROW with its line",
  ...opts,
}, async () => {
  const d = await expectInputFailure(
    // A record longer than the header (a shorter one is a row with nulls, as pandas reads it).
    "a,b\n1,2\n3,4,5\n4,5\n",
    { format: "csv", errorPolicy: "fail" },
    "dataset.chunk",
    "BAD_ROW",
  );
  assert.equal(d.error?.line, 3);
  // In a later chunk.
  const rows = Array.from({ length: 3000 }, (_, i) => `${i},${i}`);
  rows[2500] = "oops,too,long";
  const late = await expectInputFailure(
    `a,b\n${rows.join("\n")}\n`,
    { format: "csv", errorPolicy: "fail" },
    "dataset.chunk",
    "BAD_ROW",
  );
  assert.equal(late.error?.line, 2502);
});

Deno.test({
  name: "pipeline: a rename onto a column in use fails DUPLICATE_COLUMN, on either store path",
  ...opts,
}, async () => {
  for (const dropDuplicateRows of [false, true]) {
    await expectInputFailure(
      "a,b\n1,2\n",
      { format: "csv", cleaning: { renameColumns: { a: "b" }, dropDuplicateRows } },
      "dataset.split",
      "DUPLICATE_COLUMN",
    );
  }
  // NDJSON: the keys are met in the chunks.
  await expectInputFailure(
    '{"a":1,"b":2}\n',
    { format: "ndjson", cleaning: { renameColumns: { a: "b" }, dropDuplicateRows: true } },
    "dataset.chunk",
    "DUPLICATE_COLUMN",
  );
});

Deno.test({
  name: "pipeline: NUL in a column name or a value fails the dataset, not a retry",
  ...opts,
}, async () => {
  // A NUL byte in the file: binary, found before any parse.
  const header = await expectInputFailure(
    "a,b\u0000c\n1,2\n",
    { format: "csv" },
    "dataset.split",
    "BINARY_CONTENT",
  );
  assert.equal(header.error?.line, 1);
  const value = await expectInputFailure(
    "a,b\n1,x\u0000y\n",
    { format: "csv" },
    "dataset.split",
    "BINARY_CONTENT",
  );
  assert.equal(value.error?.line, 2);
  // A NUL written as a JSON escape: the text is well formed, PostgreSQL cannot keep it.
  await expectInputFailure(
    '{"a\\u0000":1}\n',
    { format: "ndjson" },
    "dataset.chunk",
    "BAD_COLUMN_NAME",
  );
  await expectInputFailure(
    '{"\\ud800":1}\n',
    { format: "ndjson" },
    "dataset.chunk",
    "BAD_COLUMN_NAME",
  );
  await expectInputFailure(
    '{"a":"x\\u0000y"}\n',
    { format: "ndjson" },
    "dataset.chunk",
    "BAD_VALUE",
  );
});

Deno.test(
  { name: "pipeline: a JSON file that is not an array fails NOT_JSON_ARRAY", ...opts },
  async () => {
    await expectInputFailure('{"a":1}', { format: "json" }, "dataset.split", "NOT_JSON_ARRAY");
  },
);

Deno.test({
  name: "pipeline: numbers past PostgreSQL's double precision are kept as text, not retried",
  ...opts,
}, async () => {
  const w = await open();
  const from = w.thrown.length;
  const d = await ingest("id,x,y\n1,1e400,2.5\n2,1e-400,3\n3,7,4e-320\n", { format: "csv" });
  assert.equal(d.status, "ready", JSON.stringify(d.error));
  assert.deepEqual(await inputErrors(d.id, from), []);
  const [row] = await w.tdb.db.query<{ columns: { name: string; type: string }[] }>(
    "SELECT columns FROM troupe_datasets WHERE id = $1",
    [d.id],
  );
  const types = Object.fromEntries(row!.columns.map((c) => [c.name, c.type]));
  assert.deepEqual(types, { id: "integer", x: "string", y: "float" });
});

Deno.test({ name: "pipeline: a file within the limits still loads", ...opts }, async () => {
  const d = await ingest(wideCsv(1000, { rows: 5 }), { format: "csv" });
  assert.equal(d.status, "ready", JSON.stringify(d.error));
});
