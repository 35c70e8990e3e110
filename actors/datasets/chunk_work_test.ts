/**
 * The chunk's CPU work: the one-pass COPY text and profile equal the plain ones
 * (`copyLines`, `profileRows`) on a mixed chunk; a worker gives what this thread gives; ingest
 * errors keep their code and line across the worker boundary.
 */
import assert from "node:assert/strict";
import {
  type ChunkJob,
  ChunkProcessor,
  cleanChunk,
  DecimalCounter,
  processChunk,
} from "./chunk_work.ts";
import { profileRows } from "./profiles.ts";
import { copyLines } from "../../tests/fixtures/copy_lines.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const enc = new TextEncoder();

const csv = [
  "id,amount,flag,day,note,json_like",
  '1,12.50,true,2024-01-02,"tab\there",{}',
  "2,,false,2024-02-03,back\\slash,x",
  '3,7,yes,2024-03-04,"multi\nline",',
  "4,1e3,no,,plain,",
  "5,0.1,true,2024-05-06,ünï ✓,y",
  '6,2,false,2024-05-07,"ü\tafter a tab, \\ and 🙂",z',
].join("\n") + "\n";

function job(idx: number, extra: Partial<ChunkJob["parse"]> = {}): ChunkJob {
  return {
    idx,
    parse: { format: "csv", delimiter: ",", encoding: "utf-8", ...extra },
    cleaning: {},
  };
}

Deno.test("chunk work: one pass gives the plain COPY text and profile", () => {
  const bytes = enc.encode(csv);
  const done = processChunk(bytes, job(3));
  const rows = cleanChunk(bytes, job(3));
  assert.equal(done.kind, "done");
  assert.equal(rows.kind, "rows");
  if (done.kind !== "done" || rows.kind !== "rows") return;
  assert.equal(done.rowCount, 6);
  const copy = new TextDecoder().decode(done.copy);
  assert.equal(copy, copyLines(3, rows.rows));
  assert.deepEqual(done.profile, profileRows(rows.header, rows.types, rows.rows));
  const first = copy.split("\n")[0]!.split("\t");
  assert.equal(first[0], String(3 * 2 ** 32), "row ids start at idx × 2^32");
  assert.ok(copy.includes("tab\\there"), "tabs are escaped");
  assert.ok(copy.includes("back\\\\slash"), "backslashes are escaped");
  assert.ok(copy.includes("\\N"), "nulls are \\N");
});

Deno.test({ name: "chunk work: a worker gives what this thread gives", ...opts }, async () => {
  const workers = new ChunkProcessor(1);
  const inline = new ChunkProcessor(0);
  try {
    assert.equal(workers.workers, 1);
    const a = await workers.process(enc.encode(csv), job(1));
    const b = await inline.process(enc.encode(csv), job(1));
    assert.deepEqual(a, b);
    // A bad row under the fail policy: a value with its code and line, not a crash.
    const bad = enc.encode("a,b\n1,2\n3\n");
    const failed = await workers.process(bad, job(0, { errorPolicy: "fail" }));
    assert.deepEqual(failed, {
      kind: "failed",
      failure: {
        code: "BAD_ROW",
        message: failed.kind === "failed" ? failed.failure.message : "",
        line: 3,
      },
    });
    assert.match(failed.kind === "failed" ? failed.failure.message : "", /expected 2 fields/);
  } finally {
    workers.close();
  }
});

Deno.test(
  { name: "chunk work: workers that cannot start leave the work to this thread", ...opts },
  async () => {
    const dir = await Deno.makeTempDir();
    const broken = new URL(`file://${dir}/broken_worker.ts`);
    await Deno.writeTextFile(broken, 'throw new Error("this worker cannot start");\n');
    const processor = new ChunkProcessor(1, { url: broken });
    try {
      assert.equal(processor.workers, 1);
      await assert.rejects(() => processor.process(enc.encode(csv), job(1)), /worker crashed/);
      // The retry of the message runs here, in this thread.
      assert.equal(processor.workers, 0);
      const out = await processor.process(enc.encode(csv), job(1));
      assert.equal(out.kind, "done");
    } finally {
      processor.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("DecimalCounter counts up as String() would write the numbers", () => {
  for (const start of [0, 8, 9, 99, 998, 2 ** 32 - 2, 954 * 2 ** 32 + 9_999_990]) {
    const c = new DecimalCounter(start);
    for (let i = 0; i < 25; i++, c.increment()) assert.equal(c.toString(), String(start + i));
  }
  assert.throws(() => new DecimalCounter(-1), RangeError);
  assert.throws(() => new DecimalCounter(1.5), RangeError);
});
