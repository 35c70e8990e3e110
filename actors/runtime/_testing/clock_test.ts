import assert from "node:assert/strict";
import { ManualClock } from "../testing.ts";

Deno.test("ManualClock: stands still until advanced; now() works detached", () => {
  const clock = new ManualClock(1_000);
  const now = clock.now;
  assert.equal(now(), 1_000);
  assert.equal(now(), 1_000);
  assert.equal(clock.advance(250), 1_250);
  assert.equal(now(), 1_250);
});

Deno.test("ManualClock: starts at the wall clock's time by default, never goes back", () => {
  const before = Date.now();
  const clock = new ManualClock();
  assert.ok(clock.now() >= before && clock.now() <= Date.now());
  assert.throws(() => clock.advance(-1), RangeError);
  assert.throws(() => clock.advance(NaN), RangeError);
});
