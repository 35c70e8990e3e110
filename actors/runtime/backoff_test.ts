import assert from "node:assert/strict";
import { backoffDelay } from "./backoff.ts";

const policy = { baseMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };

Deno.test("backoffDelay() doubles per attempt without jitter", () => {
  const none = { ...policy, jitter: 0 };
  assert.deepEqual([1, 2, 3, 4].map((a) => backoffDelay(a, none)), [100, 200, 400, 800]);
});

Deno.test("backoffDelay() is capped at maxMs", () => {
  assert.equal(backoffDelay(10, { ...policy, jitter: 0 }), 1000);
});

Deno.test("backoffDelay() jitter stays within [d*(1-j), d]", () => {
  assert.equal(backoffDelay(3, policy, () => 0), 400);
  assert.equal(backoffDelay(3, policy, () => 1), 200);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(2, policy);
    assert.ok(d >= 100 && d <= 200, `delay ${d} out of range`);
  }
});
