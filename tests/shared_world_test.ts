import assert from "node:assert/strict";
import { sharedWorld } from "./shared_world.ts";

const log: string[] = [];
const shared = sharedWorld(() => {
  log.push("open");
  return Promise.resolve({
    close: () => {
      log.push("close");
      return Promise.resolve();
    },
  });
});

shared.test("sharedWorld: the first test opens the world", async () => {
  await shared.open();
  assert.deepEqual(log, ["open"]);
});

shared.test({ name: "sharedWorld: later tests get the same world, still open" }, async () => {
  await shared.open();
  assert.deepEqual(log, ["open"]);
});

shared.test({ name: "sharedWorld: an ignored test is not waited for", ignore: true, fn() {} });

shared.test({
  name: "sharedWorld: the last registered test still sees it open",
  async fn() {
    await shared.open();
    assert.deepEqual(log, ["open"]);
  },
});

Deno.test("sharedWorld: closed once, after the last test registered through it", () => {
  assert.deepEqual(log, ["open", "close"]);
});
