import assert from "node:assert/strict";
import { glibcMallocTrim, startMallocTrim } from "./malloc_trim.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("startMallocTrim() trims every interval until stopped", async () => {
  const pads: number[] = [];
  const t = startMallocTrim({ intervalMs: 20, trim: (pad) => (pads.push(pad), 1) });
  assert.equal(t.active, true);
  await sleep(150);
  t.stop();
  assert.ok(t.trims >= 2, `trims every 20 ms: ${t.trims} in 150 ms`);
  assert.ok(pads.every((p) => p === 0), "malloc_trim(0): no padding kept");
  const stopped = t.trims;
  await sleep(100);
  assert.equal(t.trims, stopped, "no trim after stop");
});

Deno.test("startMallocTrim() does nothing without a malloc_trim or with interval 0", async () => {
  let calls = 0;
  const none = startMallocTrim({ trim: null, intervalMs: 10 });
  const off = startMallocTrim({ intervalMs: 0, trim: () => ++calls });
  await sleep(60);
  assert.equal(none.active, false);
  assert.equal(off.active, false);
  assert.equal(calls, 0);
  none.stop();
  off.stop();
});

Deno.test("startMallocTrim() runs one trim at a time: an interval during a running trim is skipped", async () => {
  let calls = 0;
  let finish = () => {};
  const t = startMallocTrim({
    intervalMs: 10,
    trim: () => (calls++, new Promise<number>((r) => finish = () => r(1))),
  });
  await sleep(80);
  assert.equal(calls, 1, "the first trim has not returned: no second one");
  finish();
  await sleep(40);
  t.stop();
  assert.ok(calls >= 2, `a trim follows once the first returned: ${calls}`);
  finish();
});

Deno.test("glibcMallocTrim() calls the C library's malloc_trim on glibc, off this thread", async () => {
  const glibc = Deno.build.os === "linux" &&
    ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6"]
      .some((p) => {
        try {
          return Deno.statSync(p).isFile;
        } catch {
          return false;
        }
      });
  const trim = glibcMallocTrim();
  try {
    if (!glibc) return; // elsewhere it may be null: the trimmer then does nothing
    assert.ok(trim, "found on glibc");
    const pending = trim(0);
    assert.ok(pending instanceof Promise, "nonblocking: a promise");
    const result = await pending;
    assert.ok(result === 0 || result === 1, `malloc_trim returns 0 or 1, got ${result}`);
  } finally {
    trim?.close();
  }
});

Deno.test({
  name: "startMallocTrim() unloads the C library it loaded when stopped",
  // The resource sanitizer is the assertion: a library left loaded fails the test.
  sanitizeResources: true,
  sanitizeOps: true,
}, () => {
  const t = startMallocTrim({ intervalMs: 60_000 });
  t.stop();
  t.stop(); // a second stop does nothing
});
