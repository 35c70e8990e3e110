import assert from "node:assert/strict";
import { ConfigError, loadBackgroundTimers } from "./config.ts";

Deno.test("BACKGROUND_TIMERS: on by default, off on request, anything else refused", () => {
  assert.equal(loadBackgroundTimers({}), true);
  assert.equal(loadBackgroundTimers({ BACKGROUND_TIMERS: " " }), true);
  assert.equal(loadBackgroundTimers({ BACKGROUND_TIMERS: "on" }), true);
  assert.equal(loadBackgroundTimers({ BACKGROUND_TIMERS: "OFF" }), false);
  assert.throws(
    () => loadBackgroundTimers({ BACKGROUND_TIMERS: "sometimes" }),
    (err) => err instanceof ConfigError && /BACKGROUND_TIMERS.*"sometimes"/.test(err.message),
  );
});
