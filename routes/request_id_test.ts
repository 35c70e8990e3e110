import assert from "node:assert/strict";
import { Hono } from "hono";
import { clientIp } from "./app.ts";
import type { AppEnv } from "./env.ts";
import { requestId } from "./request_id.ts";
import { TROUPE_VERSION } from "./version.ts";

function app() {
  const app = new Hono<AppEnv>();
  app.use("*", requestId());
  app.get("/own", (c) => new Response(c.get("requestId")));
  app.get("/ip", (c) => c.text(clientIp(false)(c)));
  app.get("/ip-proxied", (c) => c.text(clientIp(true)(c)));
  return app;
}

Deno.test("requestId() keeps a safe caller id, even on a handler's own Response", async () => {
  const res = await app().request("/own", { headers: { "x-request-id": "trace-7_a" } });
  assert.equal(await res.text(), "trace-7_a");
  assert.equal(res.headers.get("x-request-id"), "trace-7_a");
  assert.match(res.headers.get("x-response-time") ?? "", /^\d+\.\dms$/);
  assert.equal(res.headers.get("x-troupe-version"), TROUPE_VERSION);
});

Deno.test("requestId() replaces an id over 100 characters or with unsafe characters", async () => {
  for (const id of ["a".repeat(101), "a b", "<x>"]) {
    const res = await app().request("/own", { headers: { "x-request-id": id } });
    const given = await res.text();
    assert.match(given, /^[0-9a-f-]{36}$/, id);
    assert.equal(res.headers.get("x-request-id"), given);
  }
});

Deno.test("clientIp() reads the connection's address (getConnInfo), or a trusted proxy's hop", async () => {
  const env = { remoteAddr: { hostname: "10.1.2.3", port: 5000, transport: "tcp" } };
  assert.equal(await (await app().request("/ip", {}, env)).text(), "10.1.2.3");
  assert.equal(await (await app().request("/ip")).text(), "unknown", "no connection");
  const forwarded = { headers: { "x-forwarded-for": "203.0.113.9, 10.0.0.1" } };
  assert.equal(await (await app().request("/ip", forwarded, env)).text(), "10.1.2.3");
  assert.equal(await (await app().request("/ip-proxied", forwarded, env)).text(), "203.0.113.9");
});
