/**
 * CORS: listed origins may call the API from a browser, others may not; preflights are answered
 * before authentication and rate limits.
 */
import assert from "node:assert/strict";
import { openApiWorld } from "../tests/api_world.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const ALLOWED = "https://app.example.com";
const OTHER = "https://evil.example.net";

const shared = sharedWorld(async () => {
  const world = await openApiWorld([], () => ({
    corsOrigins: [ALLOWED],
    perIpPerMinute: 2,
    perKeyPerMinute: 100_000,
  }));
  const key = (await world.tenants.createKey((await world.tenants.createTenant("acme")).id)).key;
  return { ...world, key };
});
const setup = shared.open;
const opts = SHARED_WORLD_TEST;

function preflight(origin: string) {
  return new Request("http://troupe.test/api/jobs", {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "x-api-key, content-type",
    },
  });
}

Deno.test(
  "CORS: a listed origin's preflight is answered without a key and allows the API's headers",
  opts,
  async () => {
    const { app } = await setup();
    // The per-IP limit is 2 a minute here (the two requests below): preflights must not count.
    for (let i = 0; i < 3; i++) {
      const res = await app.request(preflight(ALLOWED));
      assert.equal(res.status, 204);
      assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
      const allowed = res.headers.get("access-control-allow-headers")!.toLowerCase().split(",");
      assert.ok(allowed.includes("x-api-key") && allowed.includes("content-type"));
      assert.match(res.headers.get("access-control-allow-methods")!, /POST/);
    }
  },
);

Deno.test(
  "CORS: an origin not listed gets no allow header, on a preflight or a request",
  opts,
  async () => {
    const { app, key } = await setup();
    const pre = await app.request(preflight(OTHER));
    assert.equal(pre.headers.get("access-control-allow-origin"), null);
    const res = await app.request("/api/jobs", { headers: { origin: OTHER, "x-api-key": key } });
    await res.body?.cancel();
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  },
);

Deno.test(
  "CORS: a listed origin's request exposes the request id, rate-limit and Location headers",
  opts,
  async () => {
    const { app, key } = await setup();
    const res = await app.request("/api/jobs", { headers: { origin: ALLOWED, "x-api-key": key } });
    await res.body?.cancel();
    assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
    const exposed = res.headers.get("access-control-expose-headers")!.toLowerCase().split(",");
    for (const h of ["x-request-id", "ratelimit-remaining", "retry-after", "location"]) {
      assert.ok(exposed.includes(h), `${h} is exposed`);
    }
    assert.match(res.headers.get("vary") ?? "", /origin/i);
  },
);

Deno.test("CORS: without listed origins no origin is allowed", opts, async () => {
  const world = await openApiWorld([], () => ({}));
  try {
    const res = await world.app.request(preflight(ALLOWED));
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    assert.notEqual(res.status, 401, "a preflight is not refused for want of a key");
  } finally {
    await world.close();
  }
});
