import assert from "node:assert/strict";
import { ConfigError, loadRole } from "./config.ts";

Deno.test("ROLE: api, worker or all; unset or blank is all; another value names the variable", () => {
  assert.equal(loadRole({}), "all");
  assert.equal(loadRole({ ROLE: " " }), "all");
  assert.equal(loadRole({ ROLE: "api" }), "api");
  assert.equal(loadRole({ ROLE: "worker" }), "worker");
  assert.throws(() => loadRole({ ROLE: "workers" }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /ROLE: expected one of api, worker, all \(got "workers"\)/);
    return true;
  });
});
