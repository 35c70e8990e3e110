import assert from "node:assert/strict";
import { StepBudget } from "./step_budget.ts";

Deno.test("StepBudget: spent once its fraction of the budget has elapsed", () => {
  let t = 1000;
  const budget = new StepBudget(100, { now: () => t });
  assert.equal(budget.spent(), false);
  t = 1049;
  assert.equal(budget.spent(), false);
  t = 1050;
  assert.equal(budget.spent(), true);
  assert.equal(budget.elapsedMs, 50);
  const tight = new StepBudget(100, { fraction: 0.9, now: () => t });
  t += 89;
  assert.equal(tight.spent(), false);
  t += 1;
  assert.equal(tight.spent(), true);
});

Deno.test("StepBudget: 0 or Infinity is no budget", () => {
  let t = 0;
  for (const ms of [0, Infinity]) {
    const budget = new StepBudget(ms, { now: () => t });
    t += 1e12;
    assert.equal(budget.spent(), false);
    assert.equal(budget.ms, Infinity);
  }
});

Deno.test("StepBudget: a negative budget or a fraction outside (0, 1] is refused", () => {
  assert.throws(() => new StepBudget(-1), RangeError);
  assert.throws(() => new StepBudget(Number.NaN), RangeError);
  assert.throws(() => new StepBudget(10, { fraction: 0 }), RangeError);
  assert.throws(() => new StepBudget(10, { fraction: 1.5 }), RangeError);
});
