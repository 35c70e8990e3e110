import assert from "node:assert/strict";
import { entryStream, memoryAccess, zipEntries, ZipError } from "./zip.ts";
import { storedZip } from "./xlsx_fixtures.ts";

Deno.test("zipEntries() lists entries; entryStream() gives their bytes", async () => {
  const zip = storedZip({ "a.txt": "hello", "b/c.xml": "<c/>" });
  const entries = await zipEntries(memoryAccess(zip));
  assert.deepEqual([...entries.keys()], ["a.txt", "b/c.xml"]);
  const body = await entryStream(memoryAccess(zip), entries.get("b/c.xml")!, {
    maxRatio: 200,
    maxBytes: 100,
  });
  assert.equal(await new Response(body).text(), "<c/>");
  await assert.rejects(
    entryStream(memoryAccess(zip), entries.get("a.txt")!, { maxRatio: 200, maxBytes: 4 }),
    (err: unknown) => err instanceof ZipError && err.code === "inflated_too_large",
  );
});

Deno.test("zipEntries() refuses a ZIP64 field that points past its record", async () => {
  const zip = storedZip({ a: "x" });
  const view = new DataView(zip.buffer);
  let central = zip.length - 22;
  while (view.getUint32(central, true) !== 0x02014b50) central--;
  // The central record says its size is in a ZIP64 field of 8 bytes, and ends after 0 of them.
  const record = zip.slice(central, central + 47);
  const rv = new DataView(record.buffer);
  rv.setUint32(24, 0xffffffff, true);
  rv.setUint16(30, 12, true);
  const end = zip.slice(zip.length - 22);
  new DataView(end.buffer).setUint32(12, 47 + 4, true);
  const bad = new Uint8Array([...zip.subarray(0, central), ...record, 1, 0, 8, 0, ...end]);
  await assert.rejects(
    zipEntries(memoryAccess(bad)),
    (err: unknown) => err instanceof ZipError && err.code === "bad_zip",
  );
});
