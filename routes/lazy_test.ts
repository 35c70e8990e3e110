import assert from "node:assert/strict";
import { Hono } from "hono";
import type { AppEnv } from "./env.ts";
import { lazyRoutes, routeTemplate } from "./lazy.ts";

const onError = (err: Error, c: { json: (b: unknown, s: 500) => Response }) =>
  c.json({ error: { code: "INTERNAL", message: err.message } }, 500);

/** An app with a lazy group under `/things` (counted loads) and an eager route after it. */
function appWithGroup() {
  let loads = 0;
  const templates: string[] = [];
  const app = new Hono<AppEnv>();
  app.use("*", async (c, next) => {
    await next();
    templates.push(routeTemplate(c));
  });
  app.use("*", async (c, next) => {
    c.set("requestId", "req-1");
    c.header("X-Before", "set before the group");
    await next();
  });
  const group = lazyRoutes(["/things"], [""], () => {
    loads++;
    const g = new Hono<AppEnv>();
    g.get("/things/missing", (c) => c.notFound());
    g.get("/things/boom", () => {
      throw new Error("boom");
    });
    g.get("/things/:id", (c) => c.json({ id: c.req.param("id"), requestId: c.get("requestId") }));
    return Promise.resolve(g);
  }, onError);
  for (const p of group.patterns) app.all(p, group.handler);
  app.get("/things/eager/after", (c) => c.json({ eager: true }));
  app.notFound((c) => c.json({ error: { code: "NOT_FOUND" } }, 404));
  return { app, loads: () => loads, templates, group };
}

Deno.test("a lazy group loads on its first request only, and runs with the app's variables and headers", async () => {
  const { app, loads, templates } = appWithGroup();
  assert.equal(loads(), 0);
  assert.equal((await app.request("/elsewhere")).status, 404);
  assert.equal(loads(), 0, "a path outside the group loads nothing");
  const res = await app.request("/things/7");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: "7", requestId: "req-1" });
  assert.equal(res.headers.get("x-before"), "set before the group");
  assert.equal(templates.at(-1), "/things/:id", "the group's route template, not the pattern");
  await app.request("/things/8");
  assert.equal(loads(), 1);
});

Deno.test("a request the group does not route goes on to the app's next handlers", async () => {
  const { app } = appWithGroup();
  const eager = await app.request("/things/eager/after");
  assert.deepEqual(await eager.json(), { eager: true });
  const missing = await app.request("/things/missing");
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: { code: "NOT_FOUND" } });
  const post = await app.request("/things/7", { method: "POST" });
  assert.deepEqual(await post.json(), { error: { code: "NOT_FOUND" } });
});

Deno.test("a lazy group answers HEAD with its GET routes and its errors get the app's handler", async () => {
  const { app } = appWithGroup();
  const head = await app.request("/things/7", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const boom = await app.request("/things/boom");
  assert.equal(boom.status, 500);
  assert.deepEqual(await boom.json(), { error: { code: "INTERNAL", message: "boom" } });
});

Deno.test("a group with a route outside its prefixes fails to load, naming the route", async () => {
  const group = lazyRoutes(["/things"], [""], () => {
    const g = new Hono<AppEnv>();
    g.get("/things", (c) => c.text("ok"));
    g.get("/other", (c) => c.text("unreachable"));
    return Promise.resolve(g);
  }, onError);
  await assert.rejects(group.load(), /GET \/other/);
});
