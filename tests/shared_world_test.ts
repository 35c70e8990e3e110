import assert from "node:assert/strict";
import { sharedWorld } from "./shared_world.ts";

const log: string[] = [];
// `afterAll` hooks run last registered first: this one, registered before the world's, runs
// after it has closed the world.
Deno.test.afterAll(() => {
  assert.deepEqual(log, ["open", "close"]);
});
const shared = sharedWorld(() => {
  log.push("open");
  return Promise.resolve({
    close: () => {
      log.push("close");
      return Promise.resolve();
    },
  });
});

Deno.test("sharedWorld: opened before the first test", () => {
  assert.deepEqual(log, ["open"]);
});

Deno.test("sharedWorld: every test gets the same world, still open", async () => {
  const a = await shared.open();
  const b = await shared.open();
  assert.equal(a, b);
  assert.deepEqual(log, ["open"]);
});
