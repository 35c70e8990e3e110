import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "./define.ts";

const input = z.object({ id: z.string() });

Deno.test("defineActor() fills the policy defaults", () => {
  const def = defineActor({ name: "a.b", input, handler: () => {} });
  assert.equal(def.policy.maxAttempts, 5);
  assert.equal(def.policy.timeoutMs, 60_000);
  assert.equal(def.keyOf({ id: "x" }), "a.b", "the default key is the actor name");
  assert.equal(def.schedule, undefined);
});

Deno.test("defineActor() rejects bad names, policies and schedules at definition", () => {
  assert.throws(() => defineActor({ name: "Bad Name", input, handler: () => {} }), /must match/);
  assert.throws(
    () => defineActor({ name: "a.b", input, retries: -1, handler: () => {} }),
    /retries must be an integer >= 0/,
  );
  assert.throws(
    () => defineActor({ name: "a.b", input, timeoutMs: 1.5, handler: () => {} }),
    /timeoutMs/,
  );
  assert.throws(
    () => defineActor({ name: "a.b", input, schedule: "every day", handler: () => {} }),
    /5-field cron/,
  );
});

Deno.test("defineActor() keeps a cron schedule with its input", () => {
  const def = defineActor({
    name: "a.cron",
    input,
    schedule: "0 3 * * *",
    scheduleInput: { id: "nightly" },
    handler: () => {},
  });
  assert.deepEqual(def.schedule, { cron: "0 3 * * *", input: { id: "nightly" } });
});

Deno.test("defineActor() takes a version with upgrades from older versions only", () => {
  const def = defineActor({ name: "a.v", input, handler: () => {} });
  assert.equal(def.version, 1, "the default version");
  const v3 = defineActor({
    name: "a.v",
    input,
    version: 3,
    upgrade: { 1: (old) => old, 2: (old) => old },
    handler: () => {},
  });
  assert.deepEqual(Object.keys(v3.upgrade), ["1", "2"]);
  assert.throws(
    () => defineActor({ name: "a.v", input, version: 0, handler: () => {} }),
    /version must be an integer >= 1/,
  );
  assert.throws(
    () =>
      defineActor({ name: "a.v", input, version: 2, upgrade: { 2: (o) => o }, handler: () => {} }),
    /upgrade\[2\] must be from a version below 2/,
  );
});
