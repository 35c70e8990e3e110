/**
 * Key administration: make, list, rotate with a grace period, revoke, read-only scopes, through
 * `app.request()` over a real runtime (embedded drivers, or the production ones with
 * TEST_API_DRIVERS=production); the store's expiry on every database driver.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor, jsonLogger } from "@troupe/runtime";
import { ManualClock } from "@troupe/runtime/testing";
import { TenantStore } from "../db/tenants.ts";
import { openApiWorld } from "../tests/api_world.ts";
import { targets } from "../tests/harness.ts";
import { createApp } from "./app.ts";

const work = defineActor({ name: "k.work", input: z.object({}), handler: () => "done" });

async function world() {
  const w = await openApiWorld([work]);
  const app = createApp({
    runtime: w.runtime,
    tenants: w.tenants,
    limiter: w.limiter,
    logger: jsonLogger("silent"),
  });
  const call = async (path: string, key: string, init: RequestInit & { json?: unknown } = {}) => {
    const { json, ...rest } = init;
    const res = await app.request(path, {
      ...rest,
      headers: {
        "x-api-key": key,
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    });
    const text = await res.text();
    // deno-lint-ignore no-explicit-any
    return { status: res.status, body: (text ? JSON.parse(text) : null) as any };
  };
  const make = async (name: string, admin = false) => {
    const t = await w.tenants.createTenant(name);
    return { id: t.id, key: (await w.tenants.createKey(t.id, { admin })).key };
  };
  return { ...w, call, make };
}

Deno.test("keys: make a read-only key; it reads and cannot write", async () => {
  const w = await world();
  try {
    const acme = await w.make("acme");
    const made = await w.call("/api/keys", acme.key, {
      method: "POST",
      json: { name: "dashboard", scope: "read" },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.match(made.body.key, /^trp_[0-9A-Za-z]{32}$/);
    assert.equal(made.body.scope, "read");
    const reader = made.body.key as string;
    assert.equal((await w.call("/api/jobs", reader)).status, 200);
    const write = await w.call("/api/actors/k.work/jobs", reader, {
      method: "POST",
      json: { input: {} },
    });
    assert.equal(write.status, 403);
    assert.equal(write.body.error.code, "READ_ONLY_KEY");
    const escalate = await w.call("/api/keys", reader, { method: "POST", json: { name: "x" } });
    assert.equal(escalate.body.error.code, "READ_ONLY_KEY", "a read key cannot make keys");
    const ask = await w.call("/api/courses/none/ask", reader, { method: "POST", json: {} });
    assert.notEqual(ask.body?.error?.code, "READ_ONLY_KEY", "asking a course is a read");
    assert.equal(
      (await w.call("/api/actors/k.work/jobs", acme.key, {
        method: "POST",
        json: { input: {} },
      })).status,
      202,
    );

    const listed = await w.call("/api/keys", reader);
    assert.equal(listed.status, 200);
    assert.equal(listed.body.items.length, 2);
    const view = listed.body.items.find((k: { name: string }) => k.name === "dashboard");
    assert.deepEqual(
      [view.scope, view.admin, view.active, view.revokedAt, view.expiresAt],
      ["read", false, true, null, null],
    );
    assert.equal(view.prefix, reader.slice(0, 12));
    assert(!JSON.stringify(listed.body).includes(reader), "the key itself is never listed");

    const admin = await w.call("/api/keys", acme.key, {
      method: "POST",
      json: { name: "ops", admin: true },
    });
    assert.equal(admin.status, 403);
    for (const json of [{}, "", { name: "x", scope: "write" }, { name: "x", extra: 1 }]) {
      assert.equal((await w.call("/api/keys", acme.key, { method: "POST", json })).status, 400);
    }
  } finally {
    await w.close();
  }
});

Deno.test(
  "keys: rotate with a grace period, rotate now, revoke, audit",
  async () => {
    const w = await world();
    try {
      const acme = await w.make("acme");
      const globex = await w.make("globex");
      const [first] = (await w.call("/api/keys", acme.key)).body.items;

      const graceful = await w.call(`/api/keys/${first.id}/rotate`, acme.key, {
        method: "POST",
        json: { graceSeconds: 600 },
      });
      assert.equal(graceful.status, 201, JSON.stringify(graceful.body));
      const second = graceful.body.key as string;
      assert.notEqual(second, acme.key);
      assert.equal(graceful.body.replaced.id, first.id);
      assert.ok(graceful.body.replaced.expiresAt, "the old key now expires");
      assert.equal(
        (await w.call("/api/jobs", acme.key)).status,
        200,
        "old key in its grace period",
      );
      assert.equal((await w.call("/api/jobs", second)).status, 200);
      const again = await w.call(`/api/keys/${first.id}/rotate`, second, {
        method: "POST",
        json: {},
      });
      assert.equal(again.status, 201, "a key in its grace period may be rotated again");
      const third = again.body.key as string;

      const now = await w.call(`/api/keys/${graceful.body.id}/rotate`, third, {
        method: "POST",
        json: { graceSeconds: 0 },
      });
      assert.equal(now.status, 201);
      assert.equal((await w.call("/api/jobs", second)).status, 401, "grace 0: refused at once");
      assert.equal(
        (await w.call(`/api/keys/${graceful.body.id}/rotate`, third, { method: "POST", json: {} }))
          .status,
        404,
        "an expired key is not rotated",
      );

      const foreign = await w.call(`/api/keys/${again.body.id}`, globex.key, { method: "DELETE" });
      assert.equal(foreign.status, 404, "another tenant's key is not found");
      assert.equal(
        (await w.call(`/api/keys/${again.body.id}/rotate`, globex.key, {
          method: "POST",
          json: {},
        }))
          .status,
        404,
      );
      const revoked = await w.call(`/api/keys/${again.body.id}`, third, { method: "DELETE" });
      assert.equal(revoked.status, 204);
      assert.equal((await w.call("/api/jobs", third)).status, 401);
      assert.equal(
        (await w.call(`/api/keys/${again.body.id}`, now.body.key, { method: "DELETE" })).status,
        404,
      );
      assert.equal(
        (await w.call("/api/keys/x/rotate", now.body.key, {
          method: "POST",
          json: { graceSeconds: -1 },
        }))
          .status,
        400,
      );

      const audit = await w.call("/api/audit", now.body.key);
      const actions = audit.body.items.map((e: { action: string }) => e.action);
      assert.deepEqual(
        actions.filter((a: string) => a.startsWith("api_key.rotate")).length,
        3,
      );
      assert(actions.includes("api_key.revoke"));
      assert.equal(
        (await w.call("/api/keys", now.body.key)).body.items.filter((k: { active: boolean }) =>
          k.active
        ).length,
        2,
      );
    } finally {
      await w.close();
    }
  },
);

for (const target of targets) {
  Deno.test({
    name: `keys [${target.name}]: a rotated key expires at its time, though cached`,
  }, async () => {
    const tdb = await target.open();
    try {
      const a = new TenantStore(tdb.db);
      const b = new TenantStore(tdb.db);
      const t = await a.createTenant("acme");
      const made = await a.createKey(t.id, { name: "svc", scope: "read" });
      const seen = await b.authenticate(made.key);
      assert.equal(seen?.scope, "read");
      const rotated = await a.rotateKey(t.id, made.id, { graceSeconds: 1 });
      assert.equal(
        (await b.authenticate(rotated.key))?.scope,
        "read",
        "the new key keeps the scope",
      );
      // Another instance that reads the key after the rotation caches it only until its expiry
      // (one that cached it before learns of the expiry with its cache's next read).
      const clock = new ManualClock();
      const c = new TenantStore(tdb.db, { now: clock.now });
      assert.ok(await c.authenticate(made.key), "in its grace period");
      // The grace second passes: on the instance's clock, and for the database.
      clock.advance(1200);
      await tdb.db.query(
        "UPDATE troupe_api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        [made.id],
      );
      assert.equal(await c.authenticate(made.key), null, "past its expiry, though cached");
      assert.ok(await c.authenticate(rotated.key));
    } finally {
      await tdb.cleanup();
    }
  });
}

Deno.test("keys: a key in use is read again behind its requests before its cache entry ends", async () => {
  const tdb = await targets[0]!.open();
  try {
    const a = new TenantStore(tdb.db);
    const t = await a.createTenant("acme");
    const made = await a.createKey(t.id, { name: "svc" });
    // The store under test reads through a gate that can hold its statements.
    let gate: PromiseWithResolvers<void> | null = null;
    let reads = 0;
    const gated = Object.create(tdb.db, {
      query: {
        value: async (text: string, params?: readonly unknown[]) => {
          reads++;
          if (gate) await gate.promise;
          return await tdb.db.query(text, params);
        },
      },
    }) as typeof tdb.db;
    const clock = new ManualClock();
    const b = new TenantStore(gated, { now: clock.now });
    assert.ok(await b.authenticate(made.key));
    assert.equal(reads, 1);
    clock.advance(3_000);
    assert.ok(await b.authenticate(made.key));
    assert.equal(reads, 1, "a fresh entry answers alone");
    // Half its life gone: the entry answers while the database is held, and a read starts.
    await a.revokeKey(t.id, made.id);
    gate = Promise.withResolvers<void>();
    clock.advance(3_000);
    assert.ok(await b.authenticate(made.key), "answered from the entry, not waiting");
    for (let i = 0; i < 100 && reads < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(reads, 2, "a read started behind the request");
    assert.ok(await b.authenticate(made.key));
    assert.equal(reads, 2, "one read behind the requests at a time");
    gate.resolve();
    gate = null;
    // The read behind has ended: the revocation shows before the entry's 10 s are up.
    for (let i = 0; i < 100 && await b.authenticate(made.key); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await b.authenticate(made.key), null);
    assert.equal(reads, 2);
  } finally {
    await tdb.cleanup();
  }
});
