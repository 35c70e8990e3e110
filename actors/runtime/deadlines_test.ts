import assert from "node:assert/strict";
import { Deadlines } from "./deadlines.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` (a slow host delays timers, never fires them early), at most 5 s. */
async function until(done: () => boolean): Promise<void> {
  const end = performance.now() + 5000;
  while (!done()) {
    assert.ok(performance.now() < end, "timed out");
    await sleep(5);
  }
}

/** Resolves with the time `expire` ran, or never. */
function timed(deadlines: Deadlines, ms: number) {
  const setAt = performance.now();
  let firedAt: number | undefined;
  const deadline = deadlines.set(ms, () => {
    assert.equal(firedAt, undefined, "a limit ends once");
    firedAt = performance.now();
  });
  return { setAt, deadline, fired: () => firedAt };
}

Deno.test("limits of one length end in order, none before its time; cleared ones never", async () => {
  const d = new Deadlines();
  const a = timed(d, 30);
  await sleep(10);
  const b = timed(d, 30);
  const c = timed(d, 30);
  c.deadline.clear();
  await sleep(10);
  const e = timed(d, 30);
  assert.equal(d.size, 3);
  await until(() => e.fired() !== undefined);
  for (const x of [a, b, e]) {
    const at = x.fired();
    assert.ok(at !== undefined, "each limit set ends");
    assert.ok(at >= x.setAt + 29, `ended ${at - x.setAt} ms after it was set, not before 30`);
  }
  assert.ok(a.fired()! <= b.fired()! && b.fired()! <= e.fired()!, "in the order set");
  assert.equal(c.fired(), undefined, "a cleared limit does not end");
  assert.equal(d.size, 0);
});

Deno.test("lengths run apart: a short limit set after a long one ends first", async () => {
  const d = new Deadlines();
  const long = timed(d, 400);
  const short = timed(d, 20);
  await until(() => short.fired() !== undefined);
  assert.ok(short.fired()! >= short.setAt + 19);
  const at = long.fired();
  assert.ok(at === undefined || at >= long.setAt + 399, "the long limit not before its time");
  long.deadline.clear(); // the lane's timer is cleared with its last limit (sanitizer: no leak)
  assert.equal(d.size, 0);
});

Deno.test("clearing the oldest limit moves the timer on to the next", async () => {
  const d = new Deadlines();
  const first = timed(d, 40);
  await sleep(15);
  const second = timed(d, 40);
  first.deadline.clear();
  await until(() => second.fired() !== undefined);
  assert.ok(second.fired()! >= second.setAt + 39, "the second ends 40 ms after it was set");
  assert.equal(first.fired(), undefined);
});

Deno.test("an expire that sets a limit of the same length gets one timer for it", async () => {
  const d = new Deadlines();
  let again: ReturnType<typeof timed> | undefined;
  d.set(20, () => {
    again = timed(d, 20);
  });
  await until(() => again?.fired() !== undefined);
  assert.ok(again!.fired()! >= again!.setAt + 19);
  assert.equal(d.size, 0);
});

Deno.test("many limits: each ends or is cleared, and one set after them still ends", async () => {
  const d = new Deadlines();
  const all = Array.from({ length: 3000 }, (_, i) => {
    const x = timed(d, 15);
    if (i % 3 === 0) x.deadline.clear();
    return x;
  });
  await sleep(10);
  // Usually still set when the 2,000 before it end: the lane drops what it passed and re-arms.
  const late = timed(d, 15);
  await until(() => d.size === 0);
  all.forEach((x, i) => assert.equal(x.fired() !== undefined, i % 3 !== 0, `limit ${i}`));
  assert.ok(late.fired()! >= late.setAt + 14);
});
