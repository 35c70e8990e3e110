import assert from "node:assert/strict";
import { usageDeps } from "../main.ts";
import { generateKeyText } from "../db/secrets.ts";
import { MemoryRateLimiter } from "../db/ratelimit/memory.ts";
import { ConfigError, loadConfig } from "./config.ts";

const noDb = { query: () => Promise.reject(new Error("not used")) } as never;
const rest = { limiter: new MemoryRateLimiter(), runtime: () => null as never };

Deno.test("report-sync settings: defaults, the allowlist, keys checked and never shown", () => {
  const c = loadConfig({});
  assert.equal(c.USAGE_CALL_TIMEOUT_MS, 15_000);
  assert.equal(c.EGRESS_ALLOW, undefined);
  assert.deepEqual(
    loadConfig({ EGRESS_ALLOW: "127.0.0.1, 10.0.0.0/8,," }).EGRESS_ALLOW,
    ["127.0.0.1", "10.0.0.0/8"],
  );
  assert.throws(
    () => loadConfig({ SECRET_KEYS: "k1:c2hvcnQ=" }),
    (err: unknown) =>
      err instanceof ConfigError && /SECRET_KEYS: must be/.test(err.message) &&
      !err.message.includes("c2hvcnQ"),
  );
  assert.equal(
    loadConfig({ SECRET_KEYS: generateKeyText("k1") }).SECRET_KEYS?.startsWith("k1:"),
    true,
  );
});

Deno.test("a production start refuses plain-http and private source URLs", async () => {
  const config = loadConfig({
    DATABASE_URL: "postgres://u@db.example.com/app",
    SECRET_KEYS: generateKeyText("k1"),
  });
  const deps = await usageDeps(config, noDb, rest);
  await assert.rejects(
    deps.sources.egress.check("http://usage.example.com"),
    (e: Error & { code?: string }) => e.code === "SCHEME_NOT_ALLOWED",
  );
  await assert.rejects(
    deps.sources.egress.check("https://127.0.0.1"),
    (e: Error & { code?: string }) => e.code === "ADDRESS_NOT_ALLOWED",
  );
  const allowed = await usageDeps(
    loadConfig({ SECRET_KEYS: generateKeyText("k1"), EGRESS_ALLOW: "127.0.0.1" }),
    noDb,
    rest,
  );
  assert.equal((await allowed.sources.egress.check("http://127.0.0.1:8090")).port, "8090");
  assert.equal(allowed.sources.secrets.currentKeyId, "k1");
});
