/**
 * The lease keeper's heartbeat against a database that answers as told: a key whose token moved
 * on while this process still holds it under the old one is lost (its handlers aborted); a key
 * let go, or held here again under a newer token, by the time the renewal answers is not.
 */
import assert from "node:assert/strict";
import type { Executor } from "./executor.ts";
import { LeaseKeeper, type LeaseKeeperOptions } from "./leases.ts";
import { silentObserver } from "./observer.ts";
import type { SqlDatabase } from "./ports.ts";
import { PUBLIC_TABLES } from "./sql/tables.ts";

/** A keeper whose renewal runs `meanwhile` before it answers the `fences` of the database. */
function keeper(fences: Record<string, number>, meanwhile: (k: LeaseKeeper) => void = () => {}) {
  const aborted: string[] = [];
  const warned: string[] = [];
  const db = {
    query: (sql: string) => {
      if (!sql.includes("renewed AS")) return Promise.resolve([]);
      meanwhile(k);
      return Promise.resolve(Object.entries(fences).map(([key, fence]) => ({ key, fence })));
    },
  } as unknown as SqlDatabase;
  const executor = {
    abortKey: (key: string) => {
      aborted.push(key);
      return 1;
    },
    runningJobs: () => [],
  } as unknown as LeaseKeeperOptions["executor"] & Pick<Executor, "abortKey">;
  const log = {
    warn: (msg: string, fields?: Record<string, unknown>) => warned.push(`${msg} ${fields?.key}`),
    info: () => {},
    error: () => {},
    debug: () => {},
  } as unknown as LeaseKeeperOptions["log"];
  const k = new LeaseKeeper({
    db,
    tables: PUBLIC_TABLES,
    workerId: "w1",
    leaseMs: 30_000,
    maxLeaseLosses: 3,
    actors: new Map(),
    executor,
    publisher: {} as LeaseKeeperOptions["publisher"],
    transport: { wake: () => {} },
    events: { emit: () => {} } as unknown as LeaseKeeperOptions["events"],
    forget: () => {},
    observer: silentObserver,
    log,
  });
  return { k, aborted, warned };
}

const job = (key: string, fence: number) => ({ id: `${key}-${fence}`, key, lease_fence: fence });

Deno.test("heartbeat: a key taken over by another worker is lost; its handlers are aborted", async () => {
  const { k, aborted, warned } = keeper({ a: 1, b: 2 });
  k.hold(job("a", 1));
  k.hold(job("b", 1));
  await k.heartbeat();
  assert.deepEqual(aborted, ["b"]);
  assert.deepEqual(warned, ["lease lost b"]);
});

Deno.test("heartbeat: a key claimed here again, or let go, while the renewal waited is not lost", async () => {
  const { k, aborted, warned } = keeper({ a: 2, b: 1, c: 5 }, (k) => {
    // The chains of a and c ended; a's next chain was claimed here under token 2.
    k.letGo(job("a", 1));
    k.hold(job("a", 2));
    k.letGo(job("c", 4));
  });
  k.hold(job("a", 1));
  k.hold(job("b", 1));
  k.hold(job("c", 4));
  await k.heartbeat();
  assert.deepEqual(aborted, []);
  assert.deepEqual(warned, []);
  assert.deepEqual(k.heldKeys().sort(), ["a", "b"]);
});
