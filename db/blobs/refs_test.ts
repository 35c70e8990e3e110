/**
 * Blob holders and the collection of unheld blobs, on every blob adapter: files on disk (with
 * the references in PGlite), PGlite and real PostgreSQL.
 */
import assert from "node:assert/strict";
import type { SqlDatabase } from "@troupe/runtime";
import { pgliteTarget, postgresTarget } from "../../tests/harness.ts";
import { FsBlobStore } from "./fs.ts";
import type { BlobStore } from "./port.ts";
import { PostgresBlobStore } from "./postgres.ts";
import { BlobGoneError, collectBlobs, holdBlobs, noteStored, releaseBlobs } from "./refs.ts";

const HOUR = 3_600_000;

interface Subject {
  db: SqlDatabase;
  store: BlobStore;
  /** Makes the blob and its candidate row look `ms` older (as if stored and noted then). */
  age(sha256: string, ms: number): Promise<void>;
  close(): Promise<void>;
}

const subjects: Record<string, () => Promise<Subject>> = {
  fs: async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-refs-" });
    const t = await pgliteTarget.open();
    return {
      db: t.db,
      store: new FsBlobStore(dir),
      async age(sha256, ms) {
        const then = new Date(Date.now() - ms);
        await Deno.utime(`${dir}/${sha256.slice(0, 2)}/${sha256}`, then, then);
        await ageCandidate(t.db, sha256, ms);
      },
      async close() {
        await t.cleanup();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
  pglite: async () => pgSubject(await pgliteTarget.open()),
  postgres: async () => pgSubject(await postgresTarget.open()),
};

function pgSubject(t: { db: SqlDatabase; cleanup(): Promise<void> }): Subject {
  return {
    db: t.db,
    store: new PostgresBlobStore(t.db, { partSize: 4096 }),
    async age(sha256, ms) {
      await t.db.query(
        "UPDATE troupe_blobs SET touched_at = now() - make_interval(secs => $2) WHERE sha256 = $1",
        [sha256, ms / 1000],
      );
      await ageCandidate(t.db, sha256, ms);
    },
    close: t.cleanup,
  };
}

async function ageCandidate(db: SqlDatabase, sha256: string, ms: number): Promise<void> {
  await db.query(
    "UPDATE troupe_blob_candidates SET since = now() - make_interval(secs => $2) WHERE sha256 = $1",
    [sha256, ms / 1000],
  );
}

function pdfLike(seed: number, size = 10_000): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** An upload as the routes do it: store, note, then hold in the owner's transaction. */
async function upload(s: Subject, bytes: Uint8Array, owner: Parameters<typeof holdBlobs>[2]) {
  const put = await s.store.put(ReadableStream.from([bytes.slice()]));
  await noteStored(s.db, put.sha256);
  await s.db.transaction((tx) => holdBlobs(tx, s.store, owner, [put.sha256]));
  return put.sha256;
}

async function read(s: Subject, sha256: string): Promise<Uint8Array> {
  return new Uint8Array(await new Response(await s.store.read(sha256)).arrayBuffer());
}

const datasetOf = (tenantId: string, id: string) => ({ kind: "dataset" as const, id, tenantId });
const courseOf = (tenantId: string, id: string) => ({ kind: "course" as const, id, tenantId });

for (const [name, make] of Object.entries(subjects)) {
  Deno.test(
    `blob refs [${name}]: one tenant's delete never takes another's bytes`,
    async () => {
      const s = await make();
      try {
        for (const first of ["dataset", "course"] as const) {
          const bytes = pdfLike(first === "dataset" ? 1 : 2);
          // Tenant B's course and tenant A's "dataset" of the same bytes: one blob.
          const sha = await upload(s, bytes, courseOf("tenant-b", `course-${first}`));
          assert.equal(await upload(s, bytes, datasetOf("tenant-a", `dataset-${first}`)), sha);
          const [gone, kept] = first === "dataset"
            ? [datasetOf("tenant-a", `dataset-${first}`), courseOf("tenant-b", `course-${first}`)]
            : [courseOf("tenant-b", `course-${first}`), datasetOf("tenant-a", `dataset-${first}`)];
          await s.db.transaction((tx) => releaseBlobs(tx, gone));
          // Even past the grace period, the other holder keeps the blob.
          await s.age(sha, 2 * HOUR);
          const { removed } = await collectBlobs(s.db, s.store, { graceMs: HOUR });
          assert.equal(removed, 0, `${first} released`);
          assert.deepEqual(await read(s, sha), bytes, `${kept.kind} still reads its bytes`);
          // Once the last holder lets go (and the grace passed), it goes.
          await s.db.transaction((tx) => releaseBlobs(tx, kept));
          await s.age(sha, 2 * HOUR);
          assert.equal((await collectBlobs(s.db, s.store, { graceMs: HOUR })).removed, 1);
          assert.equal(await s.store.stat(sha), null);
        }
      } finally {
        await s.close();
      }
    },
  );

  Deno.test(
    {
      name: `blob refs [${name}]: an unheld blob goes after the grace period, not before`,
    },
    async () => {
      const s = await make();
      try {
        // An upload that stored its file and then failed: nothing ever holds it.
        const bytes = pdfLike(3);
        const put = await s.store.put(ReadableStream.from([bytes.slice()]));
        await noteStored(s.db, put.sha256);
        await s.db.query(
          "INSERT INTO troupe_pdf_pages (sha256, page, lines) VALUES ($1, 1, '[]')",
          [put.sha256],
        );
        assert.equal((await collectBlobs(s.db, s.store, { graceMs: HOUR })).removed, 0);
        await s.age(put.sha256, HOUR - 60_000);
        assert.equal((await collectBlobs(s.db, s.store, { graceMs: HOUR })).removed, 0);
        assert.deepEqual(await read(s, put.sha256), bytes, "kept within the grace period");
        await s.age(put.sha256, HOUR + 60_000);
        assert.deepEqual(await collectBlobs(s.db, s.store, { graceMs: HOUR }), {
          examined: 1,
          removed: 1,
        });
        assert.equal(await s.store.stat(put.sha256), null);
        const pages = await s.db.query("SELECT 1 FROM troupe_pdf_pages WHERE sha256 = $1", [
          put.sha256,
        ]);
        assert.equal(pages.length, 0, "its extracted pages go with it");
        assert.deepEqual(await collectBlobs(s.db, s.store, { graceMs: HOUR }), {
          examined: 0,
          removed: 0,
        });
      } finally {
        await s.close();
      }
    },
  );

  Deno.test(
    {
      name: `blob refs [${name}]: a delete racing an upload of the same bytes loses nothing`,
    },
    async () => {
      const s = await make();
      try {
        for (let round = 0; round < 12; round++) {
          const bytes = pdfLike(100 + round);
          const sha = await upload(s, bytes, datasetOf("tenant-a", `a-${round}`));
          await s.age(sha, 2 * HOUR);
          // A deletes its dataset and the collector runs (with no grace at all, the harshest
          // case) while B uploads the same bytes as a course.
          const deleting = (async () => {
            await s.db.transaction((tx) => releaseBlobs(tx, datasetOf("tenant-a", `a-${round}`)));
            await collectBlobs(s.db, s.store, { graceMs: 0 });
          })();
          const uploading = upload(s, bytes, courseOf("tenant-b", `b-${round}`)).then(
            () => true,
            (err) => {
              // The only way B may lose is being told to send the file again.
              assert.ok(err instanceof BlobGoneError, String(err));
              return false;
            },
          );
          const [, held] = await Promise.all([deleting, uploading]);
          if (held) {
            assert.deepEqual(await read(s, sha), bytes, `round ${round}: B's bytes are there`);
          }
          await s.db.transaction((tx) => releaseBlobs(tx, courseOf("tenant-b", `b-${round}`)));
        }
        // With a grace period, B's upload is never even refused: an unheld blob that is due
        // is collected while B stores the same bytes.
        for (let round = 0; round < 12; round++) {
          const bytes = pdfLike(500 + round);
          const sha = await upload(s, bytes, datasetOf("tenant-a", `c-${round}`));
          await s.db.transaction((tx) => releaseBlobs(tx, datasetOf("tenant-a", `c-${round}`)));
          await s.age(sha, 2 * HOUR);
          await Promise.all([
            collectBlobs(s.db, s.store, { graceMs: HOUR }),
            upload(s, bytes, courseOf("tenant-b", `d-${round}`)),
          ]);
          await s.age(sha, 2 * HOUR);
          await collectBlobs(s.db, s.store, { graceMs: HOUR });
          assert.deepEqual(await read(s, sha), bytes, `round ${round}: B's bytes are there`);
        }
      } finally {
        await s.close();
      }
    },
  );
}
