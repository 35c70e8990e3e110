import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

Deno.test("loadConfig() gives the embedded defaults for an empty environment", () => {
  const c = loadConfig({});
  assert.equal(c.PORT, 8000);
  assert.equal(c.DATA_DIR, ".data");
  assert.equal(c.DATABASE_URL, undefined);
  assert.equal(c.RETENTION_DAYS, 7);
  assert.equal(c.LOG_LEVEL, "info");
});

Deno.test("loadConfig() names each malformed variable", () => {
  try {
    loadConfig({
      PORT: "eighty",
      DATABASE_URL: "mysql://x",
      LOG_LEVEL: "loud",
      RETENTION_DAYS: "0",
    });
    assert.fail("expected a ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.message;
    for (const name of ["PORT", "DATABASE_URL", "LOG_LEVEL", "RETENTION_DAYS"]) {
      assert.match(text, new RegExp(`${name}:`), `message should name ${name}: ${text}`);
    }
    assert.match(text, /"eighty"/);
  }
});

Deno.test("loadConfig() accepts a postgres URL and treats empty strings as unset", () => {
  const c = loadConfig({ DATABASE_URL: "postgres://u@127.0.0.1:5432/db", PORT: "" });
  assert.equal(c.DATABASE_URL, "postgres://u@127.0.0.1:5432/db");
  assert.equal(c.PORT, 8000);
});
