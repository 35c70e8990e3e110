import assert from "node:assert/strict";
import { deterministicId, uuidv7 } from "./ids.ts";

Deno.test("uuidv7() ids sort by creation time", () => {
  const a = uuidv7(1_700_000_000_000);
  const b = uuidv7(1_700_000_000_001);
  assert.ok(a < b);
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  // The first 48 bits are the milliseconds, big-endian (0x018bcfe56800).
  assert.ok(a.startsWith("018bcfe5-6800-7"), a);
  assert.ok(uuidv7(2 ** 48 - 1).startsWith("ffffffff-ffff-7"));
  assert.ok(uuidv7(0).startsWith("00000000-0000-7"));
});

Deno.test("uuidv7() ids are unique", () => {
  const ids = new Set(Array.from({ length: 10_000 }, () => uuidv7()));
  assert.equal(ids.size, 10_000);
});

Deno.test("deterministicId() is stable for the same parts and differs otherwise", async () => {
  assert.equal(await deterministicId("a", "b"), await deterministicId("a", "b"));
  assert.notEqual(await deterministicId("a", "b"), await deterministicId("ab"));
  assert.notEqual(await deterministicId("a", "b"), await deterministicId("a", "c"));
});

Deno.test("deterministicId() keeps the ids it gave before (stored ids stay valid)", async () => {
  // Values made by the earlier crypto.subtle implementation.
  assert.equal(await deterministicId("a", "b"), "59b271ae-1bbc-81d3-1d41-929817f4b16f");
  assert.equal(
    await deterministicId("job", "tenant-1", "course.extract", "x".repeat(80)),
    "a537637f-eb77-81c0-2e6e-9007785458a6",
  );
});
