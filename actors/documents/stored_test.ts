/**
 * Stored documents on PGlite and PostgreSQL: a newer version replaces the row and releases the
 * old file to the collector, the same file stays held, and dropping releases it.
 */
import assert from "node:assert/strict";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import { collectBlobs } from "../../db/blobs/refs.ts";
import { targets } from "../../tests/harness.ts";
import { dropDocument, findDocument, putDocumentBytes, recordDocument } from "./stored.ts";

const bytes = (text: string) => new TextEncoder().encode(text) as Uint8Array<ArrayBuffer>;

for (const target of targets.filter((t) => t.name !== "neon")) {
  Deno.test(`stored documents: versions replace and release their files (${target.name})`, async () => {
    const { db, cleanup } = await target.open();
    const dir = await Deno.makeTempDir({ prefix: "troupe-docs-" });
    const blobs = new FsBlobStore(dir);
    try {
      const doc = (version: string, file: { sha256: string; size: number }) => ({
        tenantId: "t1",
        kind: "statement" as const,
        key: "2026-05:pdf",
        version,
        ...file,
        contentType: "application/pdf",
        fileName: "s.pdf",
        jobId: null,
      });
      const held = async (sha256: string) =>
        (await db.query("SELECT 1 FROM troupe_blob_refs WHERE sha256 = $1", [sha256])).length;

      const v1 = await putDocumentBytes(db, blobs, bytes("first"));
      await db.transaction((tx) => recordDocument(tx, blobs, doc("v1", v1)));
      assert.equal((await findDocument(db, "t1", "statement", "2026-05:pdf"))?.version, "v1");
      assert.equal(await findDocument(db, "t2", "statement", "2026-05:pdf"), null);
      // Held: the collector keeps it whatever the grace.
      await collectBlobs(db, blobs, { graceMs: 0 });
      assert.ok(await blobs.stat(v1.sha256));

      // The same file at a new version stays held; another file releases the first.
      await db.transaction((tx) => recordDocument(tx, blobs, doc("v2", v1)));
      assert.equal(await held(v1.sha256), 1);
      const v3 = await putDocumentBytes(db, blobs, bytes("third"));
      await db.transaction((tx) => recordDocument(tx, blobs, doc("v3", v3)));
      assert.equal(await held(v1.sha256), 0);
      assert.equal(await held(v3.sha256), 1);
      await collectBlobs(db, blobs, { graceMs: 0 });
      assert.equal(await blobs.stat(v1.sha256), null, "the replaced file is collected");
      assert.ok(await blobs.stat(v3.sha256));

      await db.transaction((tx) => dropDocument(tx, "t1", "statement", "2026-05:pdf"));
      assert.equal(await findDocument(db, "t1", "statement", "2026-05:pdf"), null);
      assert.equal(await held(v3.sha256), 0);
    } finally {
      await cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
