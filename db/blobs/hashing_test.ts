import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { WorkerCrashedError, WorkerPool } from "@troupe/runtime/workers";
import { hashWorkerSpawner, holdHashWorker, streamHash } from "./hashing.ts";
import { waitFor } from "../../tests/harness.ts";

const hex = (pieces: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const p of pieces) h.update(p);
  return h.digest("hex");
};

function pieces(seed: number, count: number, size: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => {
    const b = new Uint8Array(size + i);
    for (let j = 0; j < b.length; j++) b[j] = (seed * 31 + i * 7 + j) & 0xff;
    return b;
  });
}

Deno.test("streamHash: the SHA-256 of the pieces, whether made in the worker or in this thread", async () => {
  // Many at once, opened before and after the worker is ready, pieces given in a buffer that
  // is written over at once (as the blob stores do), views of larger buffers too.
  const runs = Array.from({ length: 12 }, async (_, k) => {
    await new Promise((r) => setTimeout(r, k * 15));
    const ps = pieces(k, 40, 100_000 + k);
    const h = streamHash();
    const reused = new Uint8Array(200_000);
    for (const [i, p] of ps.entries()) {
      if (i % 2) {
        reused.set(p);
        await h.update(reused.subarray(0, p.length));
        reused.fill(0);
      } else {
        await h.update(p);
      }
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    return { got: await h.digest(), want: hex(ps) };
  });
  for (const { got, want } of await Promise.all(runs)) assert.equal(got, want);
  // Nothing added: the empty digest.
  assert.equal(await streamHash().digest(), hex([]));
});

Deno.test("streamHash: a dropped hash is closed; the others are not disturbed", async () => {
  const a = streamHash();
  const b = streamHash();
  const ps = pieces(3, 8, 300_000);
  for (const p of ps) {
    await a.update(p);
    await b.update(p);
  }
  a.drop();
  assert.throws(() => a.update(ps[0]!), /closed/);
  await assert.rejects(() => a.digest(), /closed/);
  assert.equal(await b.digest(), hex(ps));
  await assert.rejects(() => b.digest(), /closed/);
});

Deno.test("holdHashWorker: hashes between quiet spells while held are right; releasing twice is harmless", async () => {
  const release = holdHashWorker();
  try {
    for (let round = 0; round < 3; round++) {
      const ps = pieces(10 + round, 5, 1 << 20);
      const h = streamHash();
      for (const p of ps) await h.update(p);
      assert.equal(await h.digest(), hex(ps));
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    release();
    release();
  }
  const ps = pieces(20, 3, 1000);
  const h = streamHash();
  for (const p of ps) await h.update(p);
  assert.equal(await h.digest(), hex(ps));
});

Deno.test("streamHash: pieces in a SharedArrayBuffer are read in place, and reused once update resolves", async () => {
  const release = holdHashWorker();
  try {
    // Wait until the worker is ready: a hash opened then lends shared pieces (its update
    // returns a promise), where before it copies them.
    const probe = new Uint8Array(new SharedArrayBuffer(16));
    await waitFor(async () => {
      const h = streamHash();
      const lent = h.update(probe);
      await lent;
      h.drop();
      return lent instanceof Promise;
    }, { timeoutMs: 60_000, what: "the hashing worker to read shared pieces in place" });
    const runs = Array.from({ length: 6 }, async (_, k) => {
      const ps = pieces(30 + k, 12, (1 << 20) - 20 - 7 * k);
      const shared = new Uint8Array(new SharedArrayBuffer(1 << 20));
      const h = streamHash();
      for (const p of ps) {
        shared.set(p);
        // Written over as soon as update resolves: the hash must have read it by then.
        await h.update(shared.subarray(0, p.length));
        shared.fill(0xee);
      }
      return { got: await h.digest(), want: hex(ps) };
    });
    for (const { got, want } of await Promise.all(runs)) assert.equal(got, want);
    // A hash dropped with pieces lent: the next ones are right.
    const shared = new Uint8Array(new SharedArrayBuffer(1 << 20)).fill(7);
    const dropped = streamHash();
    const lent = dropped.update(shared);
    dropped.drop();
    await lent;
    const after = streamHash();
    await after.update(shared);
    assert.equal(await after.digest(), hex([shared]));
  } finally {
    release();
  }
});

Deno.test("hashWorkerSpawner: while held, pool workers start in the hashing worker's thread, hashes go on beside them", async () => {
  assert.equal(hashWorkerSpawner(), undefined, "no worker, no spawner");
  const open = streamHash();
  assert.equal(
    hashWorkerSpawner(),
    undefined,
    "a worker for hashes alone is not one to start with",
  );
  open.drop();
  const release = holdHashWorker();
  const spawner = hashWorkerSpawner()!;
  const url = new URL("../../tests/fixtures/pool_worker.ts", import.meta.url);
  const pool = new WorkerPool(url, 1, { youngGenerationMb: 4, spawner });
  try {
    const ps = pieces(30, 4, 1 << 20);
    const h = streamHash();
    const [tally] = await Promise.all([
      pool.run("tally", []),
      (async () => {
        for (const p of ps) await h.update(p);
      })(),
    ]);
    assert.equal(tally, 1);
    assert.equal(await h.digest(), hex(ps));
    assert.deepEqual(pool.started, { direct: 0, spawned: 1 });
    const waiting = pool.run("wait", [5_000]);
    // The worker stops when released: the workers it started are reported crashed, and the
    // pool starts its own.
    release();
    assert.equal(spawner.closed, true);
    assert.equal(hashWorkerSpawner(), undefined);
    await assert.rejects(() => waiting, WorkerCrashedError);
    assert.equal(await pool.run("tally", []), 1);
    assert.deepEqual(pool.started, { direct: 1, spawned: 1 });
  } finally {
    pool.close();
    release();
  }
});
