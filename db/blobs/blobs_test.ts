/**
 * One behaviour suite for every blob adapter: files on disk, PGlite, real PostgreSQL and an
 * S3-compatible bucket (s3rver).
 */
import assert from "node:assert/strict";
import { NotFoundError, PayloadTooLargeError, type SqlDatabase } from "@troupe/runtime";
import { createPgDatabase, pgliteTarget, postgresTarget } from "../../tests/harness.ts";
import { migrate } from "../migrate.ts";
import { FsBlobStore } from "./fs.ts";
import type { BlobStore } from "./port.ts";
import { PostgresBlobStore, sweepOrphans } from "./postgres.ts";
import { S3BlobStore } from "./s3.ts";
import { startS3 } from "../../tests/fixtures/s3_server.ts";
import { type CopyOut, openPostgres } from "@troupe/runtime/postgres";

/** A deterministic byte stream of `size` bytes in `chunk`-sized pieces. */
function bytes(size: number, seed = 1): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function streamOf(data: Uint8Array, chunk = 65_536, failAt?: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(controller) {
      if (failAt !== undefined && off >= failAt) {
        controller.error(new Error("client went away"));
        return;
      }
      if (off >= data.byteLength) return controller.close();
      controller.enqueue(data.slice(off, off + chunk));
      off += chunk;
    },
  });
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface Subject {
  store: BlobStore;
  /** Counts what an upload may have left behind (temp files or parts). */
  leftovers(): Promise<number>;
  close(): Promise<void>;
  db?: SqlDatabase;
}

const subjects: Record<string, () => Promise<Subject>> = {
  fs: async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-blobs-" });
    return {
      store: new FsBlobStore(dir),
      async leftovers() {
        let n = 0;
        for await (const _ of Deno.readDir(`${dir}/tmp`)) n++;
        return n;
      },
      close: () => Deno.remove(dir, { recursive: true }),
    };
  },
  pglite: async () => {
    const t = await pgliteTarget.open();
    return pgSubject(t.db, t.cleanup);
  },
  postgres: async () => {
    const t = await postgresTarget.open();
    return pgSubject(t.db, t.cleanup);
  },
  s3: async () => {
    const server = await startS3();
    // Small parts so that tests cross part boundaries and take the multipart path.
    const store = new S3BlobStore({ ...server.options, partSize: 300_000 });
    return {
      store,
      leftovers: server.leftovers,
      close: server.close,
    };
  },
};

function pgSubject(db: SqlDatabase, close: () => Promise<void>): Subject {
  return {
    db,
    // Small parts so that tests cross part boundaries.
    store: new PostgresBlobStore(db, { partSize: 100_000 }),
    async leftovers() {
      const rows = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM troupe_blob_parts p
         WHERE NOT EXISTS (SELECT 1 FROM troupe_blobs b WHERE b.upload_id = p.upload_id)`,
      );
      return rows[0]!.n;
    },
    close,
  };
}

for (const [name, make] of Object.entries(subjects)) {
  Deno.test({ name: `blobs [${name}]: stream in, hash, read back, ranges` }, async () => {
    const s = await make();
    try {
      const data = bytes(1_234_567);
      const put = await s.store.put(streamOf(data, 50_000));
      assert.equal(put.sha256, await sha256(data));
      assert.equal(put.size, data.byteLength);
      assert.equal(put.created, true);
      assert.deepEqual(await s.store.stat(put.sha256), { sha256: put.sha256, size: put.size });
      assert.deepEqual(await readAll(await s.store.read(put.sha256)), data);
      for (
        const [start, end] of [[0, 1], [99_999, 100_001], [250_000, 1_000_003], [1_234_000, 9e9]]
      ) {
        const part = await readAll(await s.store.read(put.sha256, { start: start!, end: end! }));
        assert.deepEqual(part, data.slice(start, end), `range ${start}-${end}`);
      }
      // `bytes`: the same, in one buffer.
      assert.deepEqual(await s.store.bytes(put.sha256), data);
      for (const [start, end] of [[0, 1], [99_999, 100_001], [1_234_000, 9e9], [5, 5]]) {
        const part = await s.store.bytes(put.sha256, { start: start!, end: end! });
        assert.deepEqual(part, data.slice(start, end), `bytes ${start}-${end}`);
      }
      assert.deepEqual(
        await s.store.bytes(put.sha256, { start: 1_000_000 }),
        data.slice(1_000_000),
      );
      await assert.rejects(() => s.store.bytes("ab".repeat(32)), NotFoundError);
      // Into the caller's buffer, of exactly the range's length.
      const into = new Uint8Array(50_000).fill(7);
      const filled = await s.store.bytes(put.sha256, { start: 1000, end: 51_000 }, into);
      assert.equal(filled, into);
      assert.deepEqual(into, data.slice(1000, 51_000));
      await assert.rejects(
        () => s.store.bytes(put.sha256, { start: 0, end: 10 }, new Uint8Array(11)),
        RangeError,
      );
      const again = await s.store.put(streamOf(data, 77_777));
      assert.deepEqual(again, { ...put, created: false }, "same content, stored once");
      assert.equal(await s.leftovers(), 0);
      // Exactly two MiB in 64 KiB reads: writes that end on their buffer's edge.
      const even = bytes(2 * 1024 * 1024, 7);
      const evenPut = await s.store.put(streamOf(even, 65_536));
      assert.equal(evenPut.sha256, await sha256(even));
      assert.deepEqual(await readAll(await s.store.read(evenPut.sha256)), even);
      const empty = await s.store.put(streamOf(new Uint8Array(0)));
      assert.equal(empty.size, 0);
      assert.deepEqual(await readAll(await s.store.read(empty.sha256)), new Uint8Array(0));
    } finally {
      await s.close();
    }
  });

  Deno.test(
    { name: `blobs [${name}]: a reader's own buffer is read into, again and again` },
    async () => {
      const s = await make();
      try {
        const data = bytes(2_500_000, 3);
        const put = await s.store.put(streamOf(data, 100_000));
        for (const [start, end] of [[0, 2_500_000], [700_000, 2_100_001]] as const) {
          const reader = (await s.store.read(put.sha256, { start, end })).getReader({
            mode: "byob",
          });
          // Smaller than a part, so a part takes several reads, into the same memory.
          let buffer = new ArrayBuffer(300_000);
          const got: number[][] = [];
          for (;;) {
            const r = await reader.read(new Uint8Array(buffer));
            if (r.done) break;
            assert.ok(r.value.byteLength > 0, "no empty read");
            got.push([...r.value]);
            buffer = r.value.buffer as ArrayBuffer;
            assert.equal(buffer.byteLength, 300_000, "the buffer read into is the reader's own");
          }
          assert.deepEqual(new Uint8Array(got.flat()), data.slice(start, end), `${start}-${end}`);
        }
      } finally {
        await s.close();
      }
    },
  );

  Deno.test(
    { name: `blobs [${name}]: over the limit or broken, nothing is kept` },
    async () => {
      const s = await make();
      try {
        const data = bytes(500_000, 7);
        await assert.rejects(
          () => s.store.put(streamOf(data), { maxBytes: 300_000 }),
          PayloadTooLargeError,
        );
        await assert.rejects(() => s.store.put(streamOf(data, 65_536, 300_000)), /went away/);
        assert.equal(await s.leftovers(), 0);
        assert.equal(await s.store.stat(await sha256(data)), null);
        const ok = await s.store.put(streamOf(data), { maxBytes: 500_000 });
        assert.equal(ok.size, 500_000, "exactly the limit is allowed");
      } finally {
        await s.close();
      }
    },
  );

  Deno.test({ name: `blobs [${name}]: collect and unknown ids` }, async () => {
    const s = await make();
    try {
      const put = await s.store.put(streamOf(bytes(10_000, 3)));
      assert.equal(await s.store.collect(put.sha256, { graceMs: 60_000 }), false, "just stored");
      assert.deepEqual(await s.store.stat(put.sha256), { sha256: put.sha256, size: 10_000 });
      assert.equal(await s.store.collect(put.sha256, { graceMs: 0 }), true);
      assert.equal(await s.store.collect(put.sha256, { graceMs: 0 }), false);
      assert.equal(await s.store.stat(put.sha256), null);
      await assert.rejects(() => s.store.read(put.sha256), NotFoundError);
      await assert.rejects(() => s.store.read("../../etc/passwd"), NotFoundError);
      assert.equal(await s.leftovers(), 0);
    } finally {
      await s.close();
    }
  });
}

Deno.test(
  { name: "blobs [fs]: a file of several writes, each written while the next fills" },
  async () => {
    const s = await subjects.fs!();
    try {
      const data = bytes(5 * 1024 * 1024 + 12_345, 31);
      const put = await s.store.put(streamOf(data, 70_000));
      assert.equal(put.sha256, await sha256(data));
      assert.deepEqual(await s.store.bytes(put.sha256), data);
      // A body that fails mid-way leaves no file behind, with a write still going.
      await assert.rejects(() => s.store.put(streamOf(bytes(3_000_000, 32), 70_000, 2_500_000)));
      assert.equal(await s.leftovers(), 0);
    } finally {
      await s.close();
    }
  },
);

for (const name of ["pglite", "postgres"] as const) {
  Deno.test({
    name: `blobs [${name}]: uploads ending together, one part writer, the same content twice`,
  }, async () => {
    const t = await (name === "pglite" ? pgliteTarget : postgresTarget).open();
    try {
      const store = new PostgresBlobStore(t.db, { partSize: 100_000, writers: 1 });
      const datas = [bytes(350_000, 21), bytes(350_000, 21), bytes(99_999, 22), bytes(1, 23)];
      const puts = await Promise.all(datas.map((d) => store.put(streamOf(d, 30_000))));
      for (const [i, d] of datas.entries()) {
        assert.equal(puts[i]!.sha256, await sha256(d));
        assert.deepEqual(await readAll(await store.read(puts[i]!.sha256)), d);
      }
      // The same bytes in two uploads: one of them stored them, the other's parts went.
      assert.deepEqual(puts.map((p) => p.created).slice(0, 2).sort(), [false, true]);
      assert.deepEqual(puts.slice(2).map((p) => p.created), [true, true]);
      const rows = await t.db.query<{ blobs: number; parts: number }>(
        `SELECT (SELECT count(*)::int FROM troupe_blobs) AS blobs,
                (SELECT count(*)::int FROM troupe_blob_parts) AS parts`,
      );
      assert.deepEqual(rows[0], { blobs: 3, parts: 4 + 1 + 1 });
    } finally {
      await t.cleanup();
    }
  });
}

Deno.test(
  { name: "blobs [pglite]: sweepOrphans removes parts of unfinished uploads" },
  async () => {
    const s = await subjects.pglite!();
    try {
      const db = s.db!;
      await db.query(
        `INSERT INTO troupe_blob_parts (upload_id, part, data, created_at)
       VALUES ('crashed', 0, '\\x0102'::bytea, now() - interval '2 days'),
              ('recent', 0, '\\x03'::bytea, now())`,
      );
      const kept = await s.store.put(streamOf(bytes(1000)));
      await db.query("UPDATE troupe_blob_parts SET created_at = now() - interval '3 days'");
      assert.equal(await sweepOrphans(db), 2, "the crashed upload and the back-dated 'recent'");
      assert.equal((await readAll(await s.store.read(kept.sha256))).byteLength, 1000);
    } finally {
      await s.close();
    }
  },
);

Deno.test(
  {
    name: "blobs [postgres]: parts go as bytes and are read as binary COPY; connections go back",
  },
  async () => {
    const { url, drop } = await createPgDatabase();
    // One connection: a COPY that kept it would leave every later statement waiting.
    const db = openPostgres(url, { max: 1 });
    try {
      await migrate(db);
      const texts: string[] = [];
      const copies: string[] = [];
      const spy: SqlDatabase & CopyOut = {
        ...db,
        query: (text, params) => (texts.push(text), db.query(text, params)),
        copyOut: (sql, onData) => (copies.push(sql), db.copyOut!(sql, onData)),
      };
      const store = new PostgresBlobStore(spy, { partSize: 100_000 });
      const data = bytes(250_000, 11);
      const put = await store.put(streamOf(data));
      assert.ok(texts.some((t) => /\$3::bytea/.test(t)), "parts sent as bytes");
      assert.ok(!texts.some((t) => /decode\(/.test(t)), "no part sent as text");
      texts.length = 0;
      assert.deepEqual(
        await store.bytes(put.sha256, { start: 99_000, end: 201_000 }),
        data.slice(99_000, 201_000),
      );
      assert.deepEqual(await readAll(await store.read(put.sha256)), data);
      assert.equal(copies.length, 3 + 3, "a COPY per part read (parts 0-2, then 0-2)");
      assert.ok(!texts.some((t) => /encode\(/.test(t)), "no part read as text");
      // A callback that throws: the call rejects with it, the connection stays usable.
      let pieces = 0;
      await assert.rejects(
        () =>
          db.copyOut!(
            "COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 10000) g) TO STDOUT",
            () => {
              pieces++;
              throw new Error("enough");
            },
          ),
        /enough/,
      );
      assert.equal(pieces, 1);
      await assert.rejects(() => db.copyOut!("COPY nowhere TO STDOUT", () => {}), /nowhere/);
      assert.deepEqual(await db.query("SELECT 1::int AS one"), [{ one: 1 }]);
      // A part that is not there.
      await db.query("DELETE FROM troupe_blob_parts");
      await assert.rejects(() => store.bytes(put.sha256), /missing part 0/);
      assert.deepEqual(await db.query("SELECT 2::int AS two"), [{ two: 2 }]);
    } finally {
      await db.close();
      await drop();
    }
  },
);
