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
  const deps = usageDeps(config, noDb, rest);
  await assert.rejects(
    deps.sources.egress.check("http://usage.example.com"),
    (e: Error & { code?: string }) => e.code === "SCHEME_NOT_ALLOWED",
  );
  await assert.rejects(
    deps.sources.egress.check("https://127.0.0.1"),
    (e: Error & { code?: string }) => e.code === "ADDRESS_NOT_ALLOWED",
  );
  const allowed = usageDeps(
    loadConfig({ SECRET_KEYS: generateKeyText("k1"), EGRESS_ALLOW: "127.0.0.1" }),
    noDb,
    rest,
  );
  assert.equal((await allowed.sources.egress.check("http://127.0.0.1:8090")).port, "8090");
  assert.equal((await allowed.sources.secrets).currentKeyId, "k1");
});

Deno.test("sealing keys: embedded makes its own on first use; production without SECRET_KEYS refuses", async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-keys-" });
  try {
    const embedded = usageDeps(loadConfig({ DATA_DIR: dir }), noDb, rest);
    const files = () => Array.from(Deno.readDirSync(dir)).map((e) => e.name);
    assert.deepEqual(files(), [], "nothing written before a token is sealed");
    await (await embedded.sources.secrets).seal("token", "ctx");
    assert.deepEqual(files(), ["secret.key"]);
    const production = usageDeps(
      loadConfig({ DATA_DIR: dir, DATABASE_URL: "postgres://u@db.example.com/app" }),
      noDb,
      rest,
    );
    await assert.rejects(
      production.sources.secrets,
      (e: Error & { code?: string }) => e.code === "SECRET_KEYS_MISSING",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
