import assert from "node:assert/strict";
import { NotJsonArrayError, SplitError } from "./errors.ts";
import {
  type Chunk,
  type ChunkBoundary,
  chunkStream,
  CsvScanner,
  type SplitOptions,
  splitStream,
  type SplitWarning,
} from "./split.ts";
import {
  boundaries,
  byteStreamOf,
  prng,
  pythonCsv,
  splitAndParse,
  streamOf,
  utf8,
} from "./test_util.ts";

const CSV: SplitOptions["format"] = { kind: "csv" };

function text(bytes: Uint8Array, b: ChunkBoundary): string {
  return new TextDecoder().decode(bytes.subarray(b.start, b.end));
}

function assertContiguous(chunks: ChunkBoundary[], size: number): void {
  let at = 0;
  chunks.forEach((c, i) => {
    assert.equal(c.index, i);
    assert.equal(c.start, at);
    assert.ok(c.end > c.start);
    at = c.end;
  });
  assert.equal(at, size);
}

Deno.test("CSV: a newline inside quotes never splits; lines and records are counted", async () => {
  const src = 'h1,h2\n1,"a\nb"\n2,"x,""y""\r\nz"\r\n3,c\n';
  const bytes = utf8(src);
  for (let target = 1; target <= bytes.length; target++) {
    for (const piece of [1, 3, 64]) {
      const chunks = await boundaries(bytes, { format: CSV, targetChunkBytes: target }, piece);
      assertContiguous(chunks, bytes.length);
      const legal = new Set(
        ["\n1,", "\n2,", "\n3,"].map((s) => src.indexOf(s) + 1).concat(src.length),
      );
      for (const c of chunks) assert.ok(legal.has(c.end), `target ${target}: cut at ${c.end}`);
    }
  }
  const one = await boundaries(bytes, { format: CSV, targetChunkBytes: 1 });
  assert.deepEqual(
    one.map((c) => [c.firstRecord, c.firstLine]),
    [[1, 1], [2, 2], [3, 4], [4, 6]],
  );
});

Deno.test("CSV: a target landing exactly on a quoted newline moves the cut after the record", async () => {
  const src = 'a,b\n1,"line one\nline two"\n2,x\n';
  const bytes = utf8(src);
  const quotedLf = src.indexOf("\n", src.indexOf('"'));
  const chunks = await boundaries(bytes, { format: CSV, targetChunkBytes: quotedLf + 1 });
  assert.equal(text(bytes, chunks[0]!), 'a,b\n1,"line one\nline two"\n');
  assert.equal(chunks[1]!.firstLine, 4);
  assert.equal(chunks[1]!.firstRecord, 3);
});

Deno.test("CSV: quotes only open at field start (mid-field quotes are literal)", async () => {
  const bytes = utf8('a,b\n5" pipe,x\nnext,y\n');
  const chunks = await boundaries(bytes, { format: CSV, targetChunkBytes: 1 });
  assert.equal(chunks.length, 3);
  assert.equal(text(bytes, chunks[1]!), '5" pipe,x\n');
});

Deno.test("TSV and custom quote characters", async () => {
  const bytes = utf8("a\tb\n'x\ny'\tz\nq\tr\n");
  const chunks = await boundaries(bytes, {
    format: { kind: "csv", delimiter: "\t", quote: "'" },
    targetChunkBytes: 1,
  });
  assert.deepEqual(chunks.map((c) => c.end), [4, 12, 16]);
});

Deno.test("empty file: no chunk for CSV/NDJSON, NotJsonArrayError for JSON arrays", async () => {
  const empty = new Uint8Array(0);
  assert.deepEqual(await boundaries(empty, { format: CSV }), []);
  assert.deepEqual(await boundaries(empty, { format: { kind: "ndjson" } }), []);
  await assert.rejects(
    boundaries(empty, { format: { kind: "json-array" } }),
    NotJsonArrayError,
  );
});

Deno.test("a BOM stays in chunk 0 but does not hide a leading quote", async () => {
  const bytes = utf8('\ufeff"a\nb",c\nd,e\n');
  const chunks = await boundaries(bytes, { format: CSV, targetChunkBytes: 1 });
  assert.deepEqual(chunks.map((c) => [c.start, c.end]), [[0, 11], [11, 15]]);
});

Deno.test("unbalanced quote: record_too_large instead of unbounded chunks", async () => {
  const bytes = utf8('a,b\n1,"never closed\n' + "x,y\n".repeat(1000));
  await assert.rejects(
    boundaries(bytes, { format: CSV, targetChunkBytes: 64, maxChunkBytes: 512 }, 100),
    (e: unknown) => {
      assert.ok(e instanceof SplitError);
      assert.equal(e.code, "record_too_large");
      return true;
    },
  );
  // Within the limit, the rest of the file becomes the last chunk (the parser reports it).
  const chunks = await boundaries(bytes, { format: CSV, targetChunkBytes: 1 });
  assert.equal(chunks.length, 2);
  assert.equal(chunks[1]!.firstLine, 2);
});

Deno.test("NDJSON: cuts at newlines", async () => {
  const bytes = utf8('{"a":1}\n{"a":"x\\ny"}\r\n\n{"a":3}');
  const chunks = await boundaries(bytes, { format: { kind: "ndjson" }, targetChunkBytes: 1 });
  assertContiguous(chunks, bytes.length);
  assert.deepEqual(chunks.map((c) => c.firstLine), [1, 2, 3, 4]);
});

Deno.test("JSON array: cuts after top-level commas only", async () => {
  const src = '[\n {"a":"x,]\\"}"},\n [1,[2,3]],\n {"b":{"c":[","]}}\n]\n';
  const bytes = utf8(src);
  for (const piece of [1, 4, 100]) {
    const chunks = await boundaries(
      bytes,
      { format: { kind: "json-array" }, targetChunkBytes: 1 },
      piece,
    );
    assertContiguous(chunks, bytes.length);
    assert.deepEqual(chunks.map((c) => text(bytes, c).trim()), [
      '[\n {"a":"x,]\\"}"},',
      "[1,[2,3]],",
      '{"b":{"c":[","]}}\n]',
    ]);
    assert.deepEqual(chunks.map((c) => [c.firstRecord, c.firstLine]), [[1, 1], [2, 2], [3, 3]]);
  }
});

Deno.test("JSON: a file that is not a top-level array is refused", async () => {
  for (const src of ['{"a":[1,2]}', '"text"', "42", "   ", "\ufeff{}"]) {
    await assert.rejects(
      boundaries(utf8(src), { format: { kind: "json-array" } }),
      NotJsonArrayError,
      src,
    );
  }
  await assert.rejects(
    boundaries(utf8("[1,2] [3]"), { format: { kind: "json-array" } }),
    (e: unknown) => e instanceof SplitError && e.code === "json_trailing_data" && e.offset === 6,
  );
  await assert.rejects(
    boundaries(utf8('[{"a":1},'), { format: { kind: "json-array" } }),
    (e: unknown) => e instanceof SplitError && e.code === "json_unterminated",
  );
  const ok = await boundaries(utf8("\ufeff [ ] "), { format: { kind: "json-array" } });
  assert.equal(ok.length, 1);
});

Deno.test("UTF-16LE/BE: split on code units, offsets stay even", async () => {
  const src = 'a,b\n1,"x\ny"\n2,"東,😀"\n3,z\n';
  for (const le of [true, false]) {
    const units = "\ufeff" + src;
    const bytes = new Uint8Array(units.length * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < units.length; i++) view.setUint16(i * 2, units.charCodeAt(i), le);
    const chunks = await boundaries(bytes, { format: CSV, targetChunkBytes: 2 }, 3);
    assertContiguous(chunks, bytes.length);
    const decoder = new TextDecoder(le ? "utf-16le" : "utf-16be", { ignoreBOM: true });
    const pieces = chunks.map((c) => decoder.decode(bytes.subarray(c.start, c.end)));
    assert.deepEqual(pieces, ["\ufeffa,b\n", '1,"x\ny"\n', '2,"東,😀"\n', "3,z\n"]);
    assert.ok(chunks.every((c) => c.start % 2 === 0 && c.end % 2 === 0));
  }
});

Deno.test("bounded memory: 256 MiB streamed through the splitter", async () => {
  // In its own process: RSS is per process, and other test files run beside this one.
  const split = new URL("./split.ts", import.meta.url).href;
  const script = `
    import { splitStream } from "${split}";
    const block = new TextEncoder().encode('1,"quoted\\nvalue",3.5,hello\\n'.repeat(2400));
    const total = 4096;
    let sent = 0;
    const stream = new ReadableStream({
      pull(c) { if (sent++ === total) c.close(); else c.enqueue(block); },
    });
    const before = Deno.memoryUsage().rss;
    let peak = before, count = 0, end = 0;
    for await (const b of splitStream(stream, { format: { kind: "csv" }, targetChunkBytes: 4194304 })) {
      count++; end = b.end; peak = Math.max(peak, Deno.memoryUsage().rss);
    }
    console.log(JSON.stringify({ count, end, bytes: block.length * total, grew: peak - before }));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.ok(out.success);
  const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    count: number;
    end: number;
    bytes: number;
    grew: number;
  };
  assert.equal(r.end, r.bytes);
  assert.equal(r.count, Math.ceil(r.bytes / (4 * 1024 * 1024)));
  assert.ok(r.grew < 64 * 1024 * 1024, `rss grew by ${r.grew >> 20} MiB`);
});

Deno.test("streamOf helper delivers every byte", async () => {
  const bytes = utf8("abcdef");
  const parts: number[] = [];
  for await (const p of streamOf(bytes, 4)) parts.push(p.length);
  assert.deepEqual(parts, [4, 2]);
});

Deno.test("resume: from any boundary, the rest splits as the whole file did", async () => {
  const rows = Array.from(
    { length: 60 },
    (_, i) => i % 7 === 0 ? `${i},"multi\nline, ""quoted""",x` : `${i},plain ${i},y`,
  );
  const cases: [SplitOptions["format"], string][] = [
    [CSV, "id,text,t\n" + rows.join("\r\n") + "\n"],
    [{ kind: "ndjson" }, rows.map((r, i) => JSON.stringify({ i, r })).join("\n") + "\n"],
    // Strings holding commas, brackets and escaped quotes; nested arrays and objects.
    [
      { kind: "json-array" },
      "\ufeff[\n" + rows.map((r, i) => JSON.stringify({ i, r, n: [i, { "]": '[,"' }] }))
        .join(",\n  ") +
      "\n]\n",
    ],
  ];
  for (const [format, src] of cases) {
    const bytes = utf8(src);
    const whole = await boundaries(bytes, { format, targetChunkBytes: 64, encoding: "utf-8" }, 7);
    assert.ok(whole.length > 5, `${whole.length} chunks`);
    for (const b of whole.slice(1)) {
      const rest = await boundaries(bytes.subarray(b.start), {
        format,
        targetChunkBytes: 64,
        encoding: "utf-8",
        resume: {
          start: b.start,
          index: b.index,
          firstLine: b.firstLine,
          firstRecord: b.firstRecord,
        },
      }, 5);
      assert.deepEqual(rest, whole.slice(b.index), `${format.kind} from chunk ${b.index}`);
    }
  }
});

Deno.test("resume: a JSON array resumed still refuses what follows it and an unclosed end", async () => {
  for (
    const [src, code] of [["[1,2,3] 4", "json_trailing_data"], ["[1,2,3", "json_unterminated"]]
  ) {
    await assert.rejects(
      () =>
        boundaries(utf8(src!).subarray(3), {
          format: { kind: "json-array" },
          encoding: "utf-8",
          resume: { start: 3, index: 1, firstLine: 1, firstRecord: 2 },
        }, 5),
      (err: unknown) => err instanceof SplitError && err.code === code,
    );
  }
});

Deno.test("chunkStream: keep picks the chunks whose bytes come, alloc gives their buffers", async () => {
  const lines = ["a,b"];
  for (let i = 0; i < 2000; i++) lines.push(`${i},"x\n${i}"`);
  const bytes = utf8(lines.join("\n") + "\n");
  const options: SplitOptions = { format: CSV, targetChunkBytes: 4096 };
  const all: Chunk[] = [];
  for await (const c of chunkStream(streamOf(bytes, 1000), options)) all.push(c);
  assert.ok(all.length > 5);
  const given: Uint8Array[] = [];
  const some: Chunk[] = [];
  for await (
    const c of chunkStream(streamOf(bytes, 1000), options, {
      keep: (i) => i % 2 === 1,
      alloc: (size) => {
        const b = new Uint8Array(size);
        given.push(b);
        return b;
      },
    })
  ) some.push(c);
  assert.deepEqual(some.map((c) => c.boundary), all.map((c) => c.boundary));
  some.forEach((c, i) => {
    if (i % 2 === 1) {
      assert.equal(c.bytes, given[(i - 1) / 2], "the buffer alloc gave");
      assert.deepEqual(c.bytes, all[i]!.bytes);
    } else assert.equal(c.bytes.length, 0);
  });
  await assert.rejects(async () => {
    for await (
      const _ of chunkStream(streamOf(bytes), options, { alloc: () => new Uint8Array(1) })
    ) {
      // the first chunk is refused
    }
  }, RangeError);
});

/** The CSV scanner's rules one unit at a time, as it was written before it jumped (oracle). */
class UnitByUnitScanner {
  lines = 0;
  records = 0;
  quoting = false;
  #after = false;
  #fs = true;
  #content = false;
  constructor(readonly d: number, readonly q: number) {}

  scan(units: Uint8Array | Uint16Array, from: number, stopAt: number): number {
    for (let i = from; i < units.length; i++) {
      const c = units[i]!;
      if (this.quoting) {
        if (c === this.q) {
          this.quoting = false;
          this.#after = true;
        } else if (c === 10) this.lines++;
        continue;
      }
      if (this.#after) {
        this.#after = false;
        if (c === this.q) {
          this.quoting = true;
          continue;
        }
      }
      if (c === 10) {
        this.lines++;
        this.records++;
        this.#fs = true;
        if (i >= stopAt && this.#content) return i + 1;
      } else if (c === this.d) this.#fs = this.#content = true;
      else if (c === this.q && this.#fs) {
        this.quoting = this.#content = true;
        this.#fs = false;
      } else if (c !== 13) {
        this.#fs = false;
        this.#content = true;
      }
    }
    return -1;
  }
}

Deno.test("CSV scanner: jumping between line feeds and quotes gives what a unit-by-unit scan gives", () => {
  let x = 9;
  const rand = (n: number) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n;
  const alphabet = ['"', ",", ";", "\r", "\n", "a", "b", " ", "\n\n"];
  for (let t = 0; t < 3000; t++) {
    const wide = t % 5 === 0;
    let text = "";
    for (let len = rand(300); len > 0; len--) text += alphabet[rand(alphabet.length)];
    const units = wide
      ? Uint16Array.from(text, (c) => c.charCodeAt(0))
      : new TextEncoder().encode(text);
    const [d, q] = t % 7 === 0 ? [59, 97] : [44, 34]; // ";" and "a" as quote, sometimes
    const fast = new CsvScanner(String.fromCharCode(d), String.fromCharCode(q));
    const slow = new UnitByUnitScanner(d, q);
    // Scanned in pieces (as a stream arrives), each from a random start with a random target.
    let at = 0;
    for (let step = 0; at < units.length && step < 200; step++) {
      const end = Math.min(units.length, at + 1 + rand(60));
      const piece = units.subarray(0, end);
      const stopAt = at + rand(40);
      const a = fast.scan(piece, at, stopAt);
      const b = slow.scan(piece, at, stopAt);
      const where = `case ${t}, ${JSON.stringify(text)}, from ${at} to ${end}, stop at ${stopAt}`;
      assert.equal(a, b, where);
      assert.deepEqual(
        [fast.lines, fast.records, fast.quoting],
        [slow.lines, slow.records, slow.quoting],
        where,
      );
      at = a < 0 ? end : a;
    }
  }
});

Deno.test("a byte stream (read into the splitter's own buffers) splits as any stream does", async () => {
  const rand = prng(77);
  const all = async (stream: ReadableStream<Uint8Array>, options: SplitOptions, odd: boolean) => {
    const out: { boundary: ChunkBoundary; text: string }[] = [];
    const bytes = {
      keep: (i: number) => !odd || i % 2 === 1,
      alloc: (size: number) => new Uint8Array(size),
    };
    for await (const c of chunkStream(stream, options, bytes)) {
      out.push({ boundary: c.boundary, text: new TextDecoder().decode(c.bytes) });
    }
    return out;
  };
  const file = await Deno.makeTempFile();
  try {
    for (let trial = 0; trial < 60; trial++) {
      const lines = ["id,note"];
      for (let r = Math.floor(rand() * 3000); r > 0; r--) {
        lines.push(rand() < 0.1 ? `${r},"two\nlines, ""q"""` : `${r},n${"x".repeat(rand() * 40)}`);
      }
      const bytes = utf8(lines.join("\n") + "\n");
      const options: SplitOptions = {
        format: CSV,
        targetChunkBytes: 1 + Math.floor(rand() * 9000),
      };
      const piece = 1 + Math.floor(rand() * 300_000);
      const odd = trial % 2 === 1;
      const expected = await all(streamOf(bytes, 4096), options, odd);
      const ctx = `trial ${trial}, piece ${piece}`;
      assert.deepEqual(await all(byteStreamOf(bytes, piece), options, odd), expected, ctx);
      assert.deepEqual(
        await boundaries(bytes, options),
        expected.map((c) => c.boundary),
        `${ctx}: boundaries only`,
      );
      const splits: ChunkBoundary[] = [];
      for await (const b of splitStream(byteStreamOf(bytes, piece), options)) splits.push(b);
      assert.deepEqual(splits, expected.map((c) => c.boundary), `${ctx}: split of a byte stream`);
      if (trial % 10 === 0) {
        await Deno.writeFile(file, bytes);
        using f = await Deno.open(file);
        assert.deepEqual(await all(f.readable, options, odd), expected, `${ctx}: a file`);
      }
    }
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("TSV without quoting: every line is a record, quotes are text, as Python reads it", async () => {
  const lines = ["id\tname\tnote"];
  for (let i = 0; i < 500; i++) {
    const note = i % 7 === 0 ? `"opens here` : i % 11 === 0 ? `closes" here` : `plain ${i}`;
    lines.push(`${i}\t"Q${i}" name\t${note}`);
  }
  const tsv = lines.join("\n") + "\n";
  const python = await pythonCsv(tsv, { delimiter: "\t", quoting: false });
  const split = await splitAndParse(
    utf8(tsv),
    { format: { kind: "csv", delimiter: "\t", quote: "" }, targetChunkBytes: 300 },
    { format: "csv", delimiter: "\t", quote: "" },
    37,
  );
  assert.ok(split.chunks.length > 10);
  assert.deepEqual([split.header, ...split.rows], python);
  // With quoting, the same file runs quoted fields across lines: fewer rows.
  const quoted = await splitAndParse(
    utf8(tsv),
    { format: { kind: "csv", delimiter: "\t" } },
    { format: "csv", delimiter: "\t" },
  );
  assert.ok(quoted.rows.length + quoted.skipped < 500);
});

Deno.test("a quoted field over 10 lines or 64 KB is a warning with its line, once", async () => {
  const rows = ["a,b", "1,x"]; // lines 1-2
  rows.push(`2,"stray quote`); // line 3: open, closes 14 lines later
  for (let i = 0; i < 13; i++) rows.push(`${i},y`);
  rows.push(`3,"closes here"" and ""again""`); // line 17 (the doubled quotes: the same field)
  rows.push(`4,"ten\n2\n3\n4\n5\n6\n7\n8\n9\n10"`); // lines 18-27: exactly 10 lines, no warning
  rows.push(`5,"${"z".repeat(70 * 1024)}"`); // line 28: one line, 70 KB
  rows.push("6,end");
  const csv = utf8(rows.join("\r\n") + "\r\n");
  for (const piece of [csv.length, 1000, 7]) {
    for (const target of [1 << 20, 200]) {
      const warnings: SplitWarning[] = [];
      const onWarning = (w: SplitWarning) => warnings.push(w);
      await boundaries(csv, { format: CSV, targetChunkBytes: target, onWarning }, piece);
      const what = `piece ${piece} target ${target}`;
      assert.deepEqual(warnings.map((w) => w.line), [3, 28], what);
      assert.match(warnings[0]!.message, /line 3 spans 15 lines/, what);
      assert.match(warnings[1]!.message, /spans 1 lines \(7168\d bytes\)/, what);
    }
  }
  // No quote character: nothing is quoted, nothing to tell.
  const none: SplitWarning[] = [];
  await boundaries(csv, {
    format: { kind: "csv", quote: "" },
    onWarning: (w) => none.push(w),
  });
  assert.deepEqual(none, []);
});
