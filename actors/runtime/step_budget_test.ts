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

Deno.test("StepBudget: pause gives the event loop back once the step held it for holdMs", async () => {
  let t = 0;
  const budget = new StepBudget(1000, { holdMs: 50, now: () => t });
  let ticked = 0;
  const tick = () => ticked++;
  setTimeout(tick, 0);
  t = 49;
  await budget.pause();
  assert.equal(ticked, 0, "held for less than holdMs: no turn of the loop");
  t = 50;
  await budget.pause();
  assert.equal(ticked, 1, "a timer due ran during the pause");
  setTimeout(tick, 0);
  t = 99;
  await budget.pause();
  assert.equal(ticked, 1, "held again from the pause on");
  await new Promise((r) => setTimeout(r, 0));
});
