/**
 * `compose(..., { startBehind: true })` with QStash (the edge entry's composition): the API
 * answers while the runtime's start is held (its instance heartbeat waits on a lock taken on the
 * workers' table), QStash's webhook routes wait for the start, and `started` settles once it is
 * over.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { compose } from "../main.ts";
import { loadConfig } from "../deploy/config.ts";
import { createPgDatabase } from "./harness.ts";
import { startQStash } from "./fixtures/qstash_server.ts";

const KEY = "start-behind-key-0123456789abcdefgh";

/** `p` if it settles within `ms`, else the string "pending". */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"pending">((r) => timer = setTimeout(() => r("pending"), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("with startBehind the API answers during the runtime's start; deliveries wait for it", async () => {
  const database = await createPgDatabase();
  const qstash = await startQStash({ token: "sb", currentSigningKey: "k1", nextSigningKey: "k2" });
  const config = loadConfig({
    DATABASE_URL: database.url,
    DATABASE_DRIVER: "pg",
    DEV_API_KEY: KEY,
    LOG_LEVEL: "silent",
    DATA_DIR: "/nonexistent/troupe-start-behind",
    QSTASH_URL: qstash.url,
    QSTASH_TOKEN: "sb",
    QSTASH_CURRENT_SIGNING_KEY: "k1",
    QSTASH_NEXT_SIGNING_KEY: "k2",
    PUBLIC_URL: "http://127.0.0.1:9",
  });
  // Migrated by a first composition, so that the lock below finds its table.
  await (await compose(config, [], { backgroundTimers: false })).close();
  const lock = new pg.Client({ connectionString: database.url });
  await lock.connect();
  let troupe: Awaited<ReturnType<typeof compose>> | null = null;
  try {
    await lock.query("BEGIN");
    await lock.query("LOCK TABLE troupe_workers IN EXCLUSIVE MODE");
    const composed = await within(
      compose(config, [], { startBehind: true, backgroundTimers: false }),
      15_000,
    );
    assert.notEqual(composed, "pending", "compose waited for the runtime's start");
    troupe = composed as Exclude<typeof composed, "pending">;
    assert.equal(await within(troupe.started, 200), "pending", "the start is held by the lock");

    const jobs = await troupe.fetch(
      new Request("http://edge/api/v1/jobs", { headers: { "x-api-key": KEY } }),
    );
    assert.equal(jobs.status, 200, await jobs.clone().text());
    await jobs.body?.cancel();

    // An unsigned webhook call is refused, but only once the start is over.
    const webhook = Promise.resolve(troupe.fetch(
      new Request("http://edge/schedules/system.maintain", { method: "POST", body: "{}" }),
    ));
    assert.equal(await within(webhook, 300), "pending");
    await lock.query("COMMIT");
    await troupe.started;
    const refused = await webhook;
    assert.ok(refused.status >= 400 && refused.status < 500, `status ${refused.status}`);
    await refused.body?.cancel();
  } finally {
    await lock.query("ROLLBACK").catch(() => {});
    await lock.end();
    await troupe?.close();
    await qstash.close();
    await database.drop();
  }
});
