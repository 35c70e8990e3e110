/**
 * The chunk's CPU work: the one-pass COPY text and profile equal the plain ones
 * (`copyLines`, `profileRows`) on a mixed chunk; a worker gives what this thread gives; ingest
 * errors keep their code and line across the worker boundary.
 */
import assert from "node:assert/strict";
import { InputError } from "@troupe/runtime";
import {
  type ChunkJob,
  type ChunkOutcome,
  ChunkProcessor,
  cleanChunk,
  COPY_SEGMENT_BYTES,
  DecimalCounter,
  processChunk,
  spareSegments,
} from "./chunk_work.ts";
import { profileRows } from "./profiles.ts";
import { TableProfile } from "./profile/mod.ts";
import { copyLines } from "../../tests/fixtures/copy_lines.ts";
import { seeded } from "../../tests/fixtures/seeded.ts";

const enc = new TextEncoder();

/** The COPY text of a chunk's segments. */
function copyOf(segments: readonly Uint8Array[]): string {
  const all = new Uint8Array(segments.reduce((n, s) => n + s.length, 0));
  let at = 0;
  for (const s of segments) all.set(s, (at += s.length) - s.length);
  return new TextDecoder("utf-8", { fatal: true }).decode(all);
}

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
  const copy = copyOf(done.copy);
  assert.equal(copy, copyLines(3, rows.rows));
  assert.deepEqual(JSON.parse(done.profileJson), profileRows(rows.header, rows.types, rows.rows));
  const first = copy.split("\n")[0]!.split("\t");
  assert.equal(first[0], String(3 * 2 ** 32), "row ids start at idx × 2^32");
  assert.ok(copy.includes("tab\\there"), "tabs are escaped");
  assert.ok(copy.includes("back\\\\slash"), "backslashes are escaped");
  assert.ok(copy.includes("\\N"), "nulls are \\N");
});

Deno.test("chunk work: COPY bytes come in bounded segments that split no value", () => {
  // ~300 KB of rows, one value longer than a segment, and multi-byte text near every edge.
  const long = "é".repeat(COPY_SEGMENT_BYTES); // 2 bytes each
  const lines = ["id,note"];
  for (let i = 0; i < 12_000; i++) lines.push(`${i},${i === 5_000 ? long : `ünï ✓ ${i}`}`);
  const bytes = enc.encode(lines.join("\n") + "\n");
  const done = processChunk(bytes, job(2));
  const rows = cleanChunk(bytes, job(2));
  assert.ok(done.kind === "done" && rows.kind === "rows");
  assert.equal(copyOf(done.copy), copyLines(2, rows.rows));
  assert.ok(done.copy.length > 4, `${done.copy.length} segments`);
  const big = done.copy.filter((s) => s.length > COPY_SEGMENT_BYTES);
  assert.equal(big.length, 1, "only the long value's segment is larger");
  // Room for the value as escaped UTF-8 at worst (3 bytes a UTF-16 unit).
  assert.ok(big[0]!.length <= 3 * long.length, `${big[0]!.length} bytes`);
  for (const s of done.copy) {
    assert.ok(s.length > 0, "no empty segment");
    // Each segment decodes on its own: none starts inside a character.
    new TextDecoder("utf-8", { fatal: true }).decode(s);
  }
});

Deno.test(
  "chunk work: stored COPY segments are written again, the bytes unchanged",
  async () => {
    const lines = ["id,note"];
    for (let i = 0; i < 20_000; i++) lines.push(`${i},row ${i} ✓`);
    const bytes = enc.encode(lines.join("\n") + "\n");
    const expected = copyOf((processChunk(bytes, job(4)) as { copy: Uint8Array[] }).copy);
    // This thread: segments given back are taken by the next chunk, which still writes the
    // same bytes (a reused segment's old bytes never show).
    const here = new ChunkProcessor(0);
    const first = await here.process(bytes, job(4));
    assert.ok(first.kind === "done" && first.copy.length > 4);
    const before = spareSegments();
    here.recycle(first.copy);
    assert.equal(spareSegments(), before + first.copy.length);
    assert.ok(
      first.copy.every((s) => s.buffer.byteLength > 0),
      "this thread keeps them as they are",
    );
    const second = await here.process(bytes, job(4));
    assert.ok(second.kind === "done");
    assert.equal(spareSegments(), before, "the next chunk took them all");
    assert.equal(copyOf(second.copy), expected);
    // A worker: given back segments move to it (gone here) and its next chunks are the same.
    const pool = new ChunkProcessor(1);
    try {
      const a = await pool.process(bytes.slice(), job(4));
      assert.ok(a.kind === "done");
      pool.recycle(a.copy);
      assert.ok(a.copy.every((s) => s.buffer.byteLength === 0), "moved to the worker");
      for (let i = 0; i < 3; i++) {
        const b = await pool.process(bytes.slice(), job(4));
        assert.ok(b.kind === "done");
        assert.equal(copyOf(b.copy), expected);
        pool.recycle(b.copy);
      }
    } finally {
      pool.close();
    }
  },
);

Deno.test(
  "chunk work: input buffers come back and are filled again, outcomes unchanged",
  async () => {
    const chunks = [0, 1, 2, 3].map((k) => {
      const lines = ["id,note"];
      for (let i = 0; i < 3_000 + 500 * k; i++) lines.push(`${i},row ${k}/${i} ✓`);
      return enc.encode(lines.join("\n") + "\n");
    });
    const expected = chunks.map((c) => processChunk(c, job(4)));
    for (const workers of [0, 1]) {
      const p = new ChunkProcessor(workers);
      try {
        for (let round = 0; round < 2; round++) {
          for (const [k, chunk] of chunks.entries()) {
            const input = p.input(chunk.length);
            assert.equal(input.length, chunk.length);
            input.set(chunk);
            const out = await p.process(input, job(4));
            assert.deepEqual(out, expected[k], `${workers} workers, chunk ${k}, round ${round}`);
            if (workers) assert.equal(input.byteLength, 0, "moved to the worker");
            // Back for the next chunk (a larger one needs a larger buffer the first time).
            assert.ok(p.spareInputs >= 1, `${workers} workers: a buffer came back`);
          }
        }
        assert.ok(p.spareInputs <= 4);
      } finally {
        p.close();
      }
    }
  },
);

Deno.test("chunk work: a worker gives what this thread gives", async () => {
  const workers = new ChunkProcessor(1);
  const inline = new ChunkProcessor(0);
  try {
    assert.equal(workers.workers, 1);
    const a = await workers.process(enc.encode(csv), job(1));
    const b = await inline.process(enc.encode(csv), job(1));
    assert.deepEqual(a, b);
    // The split's look at chunk 0: cleanChunk's header and types, without its rows.
    const types = await workers.types(enc.encode(csv), job(0));
    assert.deepEqual(types, await inline.types(enc.encode(csv), job(0)));
    const clean = cleanChunk(enc.encode(csv), job(0));
    assert.ok(clean.kind === "rows");
    assert.deepEqual(types, {
      kind: "types",
      sourceHeader: clean.sourceHeader,
      header: clean.header,
      types: clean.types,
    });
    assert.deepEqual(types.kind === "types" && types.types, [
      "integer",
      "float",
      "boolean",
      "date",
      "string",
      "string",
    ]);
    // A bad row under the fail policy: a value with its code and line, not a crash.
    const bad = enc.encode("a,b\n1,2\n3,4,5\n");
    const failed = await workers.process(bad, job(0, { errorPolicy: "fail" }));
    assert.deepEqual(failed, {
      kind: "failed",
      failure: {
        code: "BAD_ROW",
        message: failed.kind === "failed" ? failed.failure.message : "",
        line: 3,
      },
    });
    assert.match(
      failed.kind === "failed" ? failed.failure.message : "",
      /expected 2 fields, found 3/,
    );
  } finally {
    workers.close();
  }
});

Deno.test(
  "chunk work: workers that cannot start leave the work to this thread",
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

Deno.test(
  "chunk work: a chunk over its worker's heap or time fails as bad input",
  async () => {
    const hog = new URL("../../tests/fixtures/hog_worker.ts", import.meta.url);
    const processor = new ChunkProcessor(1, { url: hog, workerHeapMb: 64, taskTimeoutMs: 20_000 });
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(() => processor.process(enc.encode(csv), job(1)), (err: Error) => {
          assert.ok(err instanceof InputError, `an InputError (not retried), not ${err}`);
          assert.equal(err.code, "DATASET_TOO_COMPLEX");
          return true;
        });
        assert.equal(processor.workers, 1, "still in a worker: never unbounded in this thread");
      }
      // The split's look at chunk 0 runs in the worker too, under the same bounds.
      await assert.rejects(() => processor.types(enc.encode(csv), job(0)), (err: Error) => {
        assert.ok(err instanceof InputError, `an InputError (not retried), not ${err}`);
        assert.equal(err.code, "DATASET_TOO_COMPLEX");
        return true;
      });
    } finally {
      processor.close();
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

/** Seeded CSV with late widenings, ragged rows, blank lines, quoted newlines and CRLF. */
function nastyCsv(seed: number, rows: number, { header = true } = {}): string {
  const rand = seeded(seed);
  const lines = header ? ["id,amount,flag,day,note,late"] : [];
  for (let r = 0; r < rows; r++) {
    const late = r < rows * 0.8 ? "" : r % 3 === 0 ? "word" : String(r);
    const amount = r === Math.floor(rows * 0.6) ? "1.50" : String(r % 97);
    const flag = r === rows - 5 ? "maybe" : r % 2 ? "yes" : "no";
    const day = r === Math.floor(rows * 0.7)
      ? "2024-01-02 10:30"
      : `2024-0${1 + (r % 9)}-1${r % 10}`;
    const note = rand() < 0.05 ? '"two\nlines, ""quoted"""' : rand() < 0.1 ? "" : `n${r}`;
    let line = `${r},${amount},${flag},${day},${note},${late}`;
    if (rand() < 0.01) line += ",extra"; // ragged
    lines.push(line);
    if (rand() < 0.01) lines.push(""); // blank
  }
  return lines.join(rand() < 0.5 ? "\n" : "\r\n") + "\n";
}

/** Equal outcomes; the COPY bytes compared as text first (a diff of large arrays is slow). */
function assertSameOutcome(a: ChunkOutcome, b: ChunkOutcome, what: string): void {
  if (a.kind === "done" && b.kind === "done") {
    const [x, y] = [copyOf(a.copy), copyOf(b.copy)];
    const at = [...x].findIndex((c, i) => c !== y[i]);
    assert.ok(x === y, `${what}: COPY text differs at ${at}: ${x.slice(at, at + 80)}`);
    assert.deepEqual({ ...a, copy: null }, { ...b, copy: null }, what);
  } else {
    assert.deepEqual(a, b, what);
  }
}

/**
 * Numbers written many ways (plain, padded, signed, grouped, exponents, too many digits, tiny,
 * `-0`, spaces, empties) in an integer-ish and a float-ish column, and the same texts in a
 * column that turns to strings: numbers kept as written and numbers written out again.
 */
function numbersCsv(seed: number, rows: number): string {
  const ints = ["0", "-0", "12", "-12", "007", "1,000", "+5", " 42 ", "", "123456789012345"];
  const floats = [
    ...ints,
    "1.50",
    "1.5",
    "-0.25",
    ".5",
    "5.",
    "1e3",
    "0.0000001",
    "0.000001",
    "1234567890123456",
    "9007199254740993",
    "3.14159265358979",
    "0.30000000000000004",
    "-0.0",
    "12.000",
  ];
  let x = seed;
  const pick = (list: string[]) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return list[x % list.length]!;
  };
  const lines = ["i,f,s"];
  for (let r = 0; r < rows; r++) {
    const q = (v: string) => (v.includes(",") || v.includes(" ") ? `"${v}"` : v);
    lines.push(`${q(pick(ints))},${q(pick(floats))},${q(r === rows - 3 ? "x" : pick(floats))}`);
  }
  return lines.join("\n") + "\n";
}

Deno.test("chunk work: batches give what the whole chunk gives, widenings and all", () => {
  const cases: [string, ChunkJob][] = [
    [numbersCsv(1, 2000), job(0)],
    [numbersCsv(2, 2000), { ...job(0), cleaning: { trim: false } }],
    [numbersCsv(3, 2000), { ...job(0), cleaning: { nullTokens: ["12", "-0"] } }],
    [nastyCsv(1, 3000), job(0)],
    [nastyCsv(2, 2500, { header: false }), job(4, { header: ["a", "b", "c", "d", "e", "f"] })],
    [nastyCsv(3, 2000, { header: false }), job(0, { hasHeader: false })],
    [nastyCsv(4, 1500), { ...job(0), cleaning: { dropColumns: ["note"], trim: false } }],
    ["id,v\n", job(0)],
    ["", job(0)],
  ];
  for (const [text, j] of cases) {
    const bytes = enc.encode(text);
    // csv-parse over the whole chunk: the reference (the batched path never takes it).
    const whole = processChunk(bytes, { ...j, parse: { ...j.parse, csvReader: "csv-parse" } });
    assert.equal(whole.kind, "done");
    for (const batchRows of [1, 7, 100, 1024, Infinity]) {
      const batched = processChunk(bytes, j, { batchRows });
      assertSameOutcome(batched, whole, `batches of ${batchRows}`);
    }
  }
});

Deno.test("chunk work: a chunk the fast reader gives up on midway is parsed whole", () => {
  // A quote inside an unquoted field, far into the chunk: csv-parse's rules apply.
  const text = nastyCsv(5, 2000).replace("n1500", 'n1"500');
  assert.ok(text.includes('n1"500'));
  const bytes = enc.encode(text);
  const whole = processChunk(bytes, {
    ...job(0),
    parse: { ...job(0).parse, csvReader: "csv-parse" },
  });
  assertSameOutcome(processChunk(bytes, job(0), { batchRows: 64 }), whole, "fallback");
});

Deno.test("chunk work: under the fail policy a bad row in a later batch fails with its line", () => {
  const lines = ["a,b", ...Array.from({ length: 500 }, (_, i) => `${i},x`)];
  lines[400] = "1,2,3";
  const out = processChunk(enc.encode(lines.join("\n") + "\n"), job(0, { errorPolicy: "fail" }), {
    batchRows: 50,
  });
  assert.equal(out.kind, "failed");
  if (out.kind === "failed") assert.equal(out.failure.line, 401);
});

Deno.test("chunk work: null tokens are nulls in typed columns and text in text columns", () => {
  const lines = ["n,word,late"];
  for (let i = 0; i < 600; i++) {
    const token = ["NA", "null", "None", "-"][i % 4]!;
    // `late` holds numbers and tokens until row 500: a batch that widens it starts over.
    lines.push(
      `${i % 3 === 0 ? token : i},${i % 5 === 0 ? token : `w${i}`},${
        i === 500 ? "text" : i % 2 ? token : i
      }`,
    );
  }
  const bytes = enc.encode(lines.join("\n") + "\n");
  const whole = processChunk(bytes, {
    ...job(0),
    parse: { ...job(0).parse, csvReader: "csv-parse" },
  });
  for (const batchRows of [1, 64, 1024]) {
    const out = processChunk(bytes, job(0), { batchRows });
    assertSameOutcome(out, whole, `batches of ${batchRows}`);
    assert.ok(out.kind === "done");
    assert.deepEqual(out.types, ["integer", "string", "string"]);
    const rows = copyOf(out.copy).trimEnd().split("\n").map((l) => l.split("\t").slice(1));
    assert.deepEqual(rows[3], ["\\N", "w3", "-"]);
    assert.deepEqual(rows[5], ["5", "null", "null"]);
    assert.deepEqual(rows[6], ["\\N", "w6", "6"]);
    const { columns } = TableProfile.fromJSON(JSON.parse(out.profileJson)).summary();
    assert.deepEqual(columns.map((c) => [c.type, c.nulls]), [
      ["integer", 200],
      ["string", 0],
      ["string", 0],
    ]);
  }
});
