/**
 * `jobRoutes()` through `app.request()` on in-memory PGlite: idempotency keys, hidden actors,
 * and the error bodies (4xx with the error's code; anything else a 500 that says nothing
 * internal).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { pgliteTarget } from "../../../tests/harness.ts";
import { defineActor } from "../define.ts";
import { Runtime } from "../runtime.ts";
import { InProcessTransport } from "../transports/in_process.ts";
import { jsonLogger } from "../ports.ts";
import { jobRoutes } from "./hono.ts";

const echo = defineActor({
  name: "h.echo",
  input: z.object({ n: z.number().int() }),
  handler: (input) => input,
});
const hidden = defineActor({
  name: "h.hidden",
  input: z.object({}),
  exposed: false,
  handler: () => null,
});

async function openRoutes() {
  const { db, cleanup } = await pgliteTarget.open();
  const runtime = new Runtime({
    db,
    actors: [echo, hidden],
    transport: new InProcessTransport(),
    logger: jsonLogger("silent"),
  });
  await runtime.start();
  const app = jobRoutes(runtime);
  const post = async (path: string, body: string) => {
    const res = await app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    return { status: res.status, body: await res.json() };
  };
  return { app, db, post, close: async () => (await runtime.stop(), await cleanup()) };
}

Deno.test("jobRoutes() answers a repeated idempotency key with the first job", async () => {
  const { post, close } = await openRoutes();
  try {
    const first = await post("/actors/h.echo/jobs", '{"input":{"n":1},"idempotencyKey":"k1"}');
    const again = await post("/actors/h.echo/jobs", '{"input":{"n":1},"idempotencyKey":"k1"}');
    assert.equal(first.status, 202);
    assert.equal(again.status, 200);
    assert.equal(again.body.jobId, first.body.jobId);
    const other = await post("/actors/h.echo/jobs", '{"input":{"n":2},"idempotencyKey":"k1"}');
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, "IDEMPOTENCY_KEY_REUSED");
  } finally {
    await close();
  }
});

Deno.test("jobRoutes() hides actors defined with exposed: false", async () => {
  const { post, close } = await openRoutes();
  try {
    const res = await post("/actors/h.hidden/jobs", '{"input":{}}');
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, "NOT_FOUND");
  } finally {
    await close();
  }
});

Deno.test("jobRoutes() answers an unexpected failure with a 500 that names nothing internal", async () => {
  const { app, db, post, close } = await openRoutes();
  try {
    await db.query("ALTER TABLE troupe_jobs RENAME TO troupe_jobs_gone");
    const res = await post("/actors/h.echo/jobs", '{"input":{"n":3}}');
    assert.equal(res.status, 500);
    assert.deepEqual(res.body, { error: { code: "INTERNAL", message: "internal error" } });
    const long = await app.request(`/jobs/${"x".repeat(300)}`);
    assert.equal(long.status, 404);
  } finally {
    await db.query("ALTER TABLE troupe_jobs_gone RENAME TO troupe_jobs");
    await close();
  }
});
