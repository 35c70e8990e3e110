/**
 * The console through `app.request()`: login, sessions, CSRF, tenant isolation, admin scope.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import { defineActor, jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { openPostgres } from "@troupe/runtime/postgres";
import { openApiWorld } from "../../tests/api_world.ts";
import { postgresTarget, sleep, sseReader, waitFor, within } from "../../tests/harness.ts";
import { TenantStore } from "../../db/tenants.ts";
import { consoleRoutes } from "./mod.tsx";
import { type App, consoleClient as browser } from "./testing.ts";
import { localCourseAdapters } from "../../tests/local_adapters.ts";

const sleepy = defineActor({
  name: "c.sleepy",
  input: z.object({ n: z.number().int() }),
  key: (i) => `c.sleepy:${i.n}`,
  handler: (input) => ({ n: input.n }),
});
const broken = defineActor({
  name: "c.broken",
  input: z.object({ n: z.number().int() }),
  key: (i) => `c.broken:${i.n}`,
  retries: 0,
  handler: () => {
    throw new Error("always broken");
  },
});

async function enqueue(app: App, key: string, actor: string, n: number, delayMs = 0) {
  const res = await app.request(`/api/v1/actors/${actor}/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key },
    body: JSON.stringify({ input: { n }, ...(delayMs ? { delayMs } : {}) }),
  });
  assert.equal(res.status, 202);
  return (await res.json()).jobId as string;
}

Deno.test({ name: "console: login, CSRF, tenant isolation, admin scope" }, async () => {
  const world = await openApiWorld([sleepy, broken], () => ({ perKeyPerMinute: 100_000 }));
  try {
    const { tenants, app } = world;
    const acme = await tenants.createTenant("acme");
    const globex = await tenants.createTenant("globex");
    const acmeKey = (await tenants.createKey(acme.id)).key;
    const globexKey = (await tenants.createKey(globex.id)).key;
    const ops = await tenants.createTenant("ops");
    const adminKey = (await tenants.createKey(ops.id, { admin: true })).key;

    const anonymous = browser(app);
    const redirect = await anonymous.request("/console/jobs");
    assert.equal(redirect.status, 303);
    assert.equal(redirect.headers.get("location"), "/console/login");

    const bad = await anonymous.login("trp_nottherightkey");
    assert.equal(bad.status, 401);
    const badPage = await bad.text();
    assert.match(badPage, /unknown or revoked/);
    assert.ok(!anonymous.jar.has("troupe_console"), "no session for a bad key");

    // A login form without the login cookie's token is refused.
    const forged = await browser(app).post("/console/login", { _csrf: "x", key: acmeKey });
    assert.equal(forged.status, 403);

    const acmeJob = await enqueue(app, acmeKey, "c.sleepy", 1, 3_600_000);
    const globexJob = await enqueue(app, globexKey, "c.sleepy", 2, 3_600_000);

    const a = browser(app);
    const ok = await a.login(acmeKey);
    assert.equal(ok.status, 303);
    const cookie = ok.headers.getSetCookie().find((l) => l.startsWith("troupe_console="))!;
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Strict/i);
    assert.ok(!cookie.includes(acmeKey), "the cookie is not the key");

    const jobsPage = await (await a.request("/console/jobs")).text();
    assert.ok(jobsPage.includes(acmeJob), "acme sees its job");
    assert.ok(!jobsPage.includes(globexJob), "acme does not see globex's job");

    const admin = browser(app);
    await admin.login(adminKey);
    const all = await (await admin.request("/console/jobs")).text();
    assert.ok(all.includes(acmeJob) && all.includes(globexJob), "the admin sees every tenant");

    // CSRF: missing and wrong tokens are 403 and change nothing.
    const missing = await a.post(`/console/jobs/${acmeJob}/cancel`, {});
    assert.equal(missing.status, 403);
    const wrong = await a.post(`/console/jobs/${acmeJob}/cancel`, { _csrf: "wrong" });
    assert.equal(wrong.status, 403);
    assert.equal((await world.runtime.getJob(acmeJob)).status, "queued");

    // Another tenant's job is not found; the own job is cancelled.
    const token = await a.csrf();
    const foreign = await a.post(`/console/jobs/${globexJob}/cancel`, { _csrf: token });
    assert.equal(foreign.status, 404);
    assert.equal((await world.runtime.getJob(globexJob)).status, "queued");
    const cancel = await a.post(`/console/jobs/${acmeJob}/cancel`, { _csrf: token });
    assert.equal(cancel.status, 303);
    assert.equal((await world.runtime.getJob(acmeJob)).status, "cancelled");

    // Dead letters: acme replays its own; globex's stays out of sight.
    const failed = await enqueue(app, acmeKey, "c.broken", 3);
    await enqueue(app, globexKey, "c.broken", 4);
    const dls = await waitFor(async () => {
      const page = await world.runtime.listDeadLetters({});
      return page.items.length === 2 ? page.items : null;
    }, { what: "two dead letters" });
    const own = dls.find((d) => d.jobId === failed)!;
    const other = dls.find((d) => d.jobId !== failed)!;
    const dlPage = await (await a.request("/console/dead-letters")).text();
    assert.ok(dlPage.includes(own.id) && !dlPage.includes(other.id));
    const replay = await a.post(`/console/dead-letters/${own.id}/replay`, { _csrf: token });
    assert.equal(replay.status, 303);
    assert.ok(
      (await world.runtime.listDeadLetters({})).items.find((d) => d.id === own.id)!
        .replayedAt,
    );

    // Schedules are an admin's; the actors page counts the tenant's own jobs.
    assert.match(await (await a.request("/console/schedules")).text(), /admin key/);
    assert.equal((await admin.request("/console/schedules")).status, 200);
    const actors = await (await admin.request("/console/actors")).text();
    assert.match(actors, /data-actor="c.sleepy"/);
    assert.match(actors, />Pause</);
    assert.ok(!(await (await a.request("/console/actors")).text()).includes(">Pause<"));

    // Pausing is an admin's, with the session's CSRF token; keys too; instances for all.
    const refusedPause = await a.post("/console/actors/c.sleepy/pause", { _csrf: token });
    assert.equal(refusedPause.status, 403);
    assert.equal((await admin.post("/console/actors/c.sleepy/pause", {})).status, 403);
    assert.deepEqual(await world.runtime.paused(), []);
    const adminToken = await admin.csrf();
    const paused = await admin.post("/console/actors/c.sleepy/pause", { _csrf: adminToken });
    assert.equal(paused.status, 303);
    assert.equal(paused.headers.get("location"), "/console/actors?notice=paused");
    assert.deepEqual((await world.runtime.paused()).map((x) => x.actor), ["c.sleepy"]);
    assert.match(await (await admin.request("/console/actors")).text(), />Resume</);
    const resumed = await admin.post("/console/actors/c.sleepy/resume", { _csrf: adminToken });
    assert.equal(resumed.status, 303);
    assert.deepEqual(await world.runtime.paused(), []);
    assert.equal((await a.request("/console/actors/c.sleepy/keys")).status, 403);
    assert.equal((await admin.request("/console/actors/c.sleepy/keys")).status, 200);
    assert.equal((await admin.request("/console/actors/c.nope/keys")).status, 404);
    const instances = await (await a.request("/console/instances")).text();
    assert.match(instances, new RegExp(`data-instance="${world.runtime.workerId}"`));
    assert.ok(!instances.includes(" pid "), "a tenant's key sees no host or pid");

    // Logout ends the session: the cookie no longer opens a page.
    const session = a.jar.get("troupe_console")!;
    const out = await a.post("/console/logout", { _csrf: token });
    assert.equal(out.status, 303);
    a.jar.set("troupe_console", session); // the old cookie, kept: the server forgot it
    assert.equal((await a.request("/console/jobs")).status, 303);
  } finally {
    await world.close();
  }
});

Deno.test(
  { name: "console: a course's modules and lessons, the tenant's own" },
  async () => {
    const world = await openApiWorld([sleepy]);
    try {
      const { tenants, runtime } = world;
      const app = new Hono().route(
        "/console",
        consoleRoutes({ runtime, tenants, courses: localCourseAdapters(world.tdb.db) }),
      );
      const acme = await tenants.createTenant("acme");
      const globex = await tenants.createTenant("globex");
      const structure = {
        modules: [{
          title: "Foundations",
          summary: "The basics.",
          lessons: [
            {
              title: "Queues",
              summary: "Why queues.",
              pages: [1, 4],
              fileName: "a.pdf",
              quiz: [{}],
            },
            { title: "Retries", summary: "Backoff.", pages: [5, 9], fileName: "a.pdf", quiz: [] },
          ],
        }],
      };
      const ids = [crypto.randomUUID(), crypto.randomUUID()];
      for (
        const [id, tenant, title] of [[ids[0], acme.id, "Actors 101"], [
          ids[1],
          globex.id,
          "Secret",
        ]]
      ) {
        await world.tdb.db.query(
          `INSERT INTO troupe_courses (id, tenant_id, title, status, structure)
         VALUES ($1, $2, $3, 'ready', $4::jsonb)`,
          [id, tenant, title, JSON.stringify(structure)],
        );
      }
      const a = browser(app);
      await a.login((await tenants.createKey(acme.id)).key);
      const list = await (await a.request("/console/courses")).text();
      assert.ok(list.includes("Actors 101") && !list.includes("Secret"));
      const course = await (await a.request(`/console/courses/${ids[0]}`)).text();
      assert.match(course, /<h2>Foundations<\/h2>/);
      assert.match(course, /data-lesson="0.1"[^]*Retries/);
      assert.match(course, /pp\. 1–4/);
      assert.equal((await a.request(`/console/courses/${ids[1]}`)).status, 404);
    } finally {
      await world.close();
    }
  },
);

Deno.test({ name: "console: failed logins count against the address" }, async () => {
  const world = await openApiWorld([sleepy], () => ({ perIpPerMinute: 2 }));
  try {
    const b = browser(world.app);
    assert.equal((await b.login("trp_wrong1")).status, 401);
    assert.equal((await b.login("trp_wrong2")).status, 401);
    const third = await b.login("trp_wrong3");
    assert.equal(third.status, 429);
    assert.ok(Number(third.headers.get("retry-after")) >= 1);
    assert.match(await third.text(), /Too many failed logins/);
  } finally {
    await world.close();
  }
});

Deno.test(
  { name: "console: a read key cannot act; a revoked key ends its session" },
  async () => {
    const world = await openApiWorld([sleepy], () => ({ perKeyPerMinute: 100_000 }));
    try {
      const { tenants, app } = world;
      const acme = await tenants.createTenant("acme");
      const full = await tenants.createKey(acme.id, { name: "full" });
      const read = await tenants.createKey(acme.id, { name: "reader", scope: "read" });
      const job = await enqueue(app, full.key, "c.sleepy", 1, 3_600_000);

      const r = browser(app);
      assert.equal((await r.login(read.key)).status, 303);
      const jobs = await (await r.request("/console/jobs")).text();
      assert.ok(jobs.includes(job) && !jobs.includes(">Cancel<"), "no Cancel for a read key");
      const refused = await r.post(`/console/jobs/${job}/cancel`, { _csrf: await r.csrf() });
      assert.equal(refused.status, 403);
      assert.equal((await world.runtime.getJob(job)).status, "queued");

      const f = browser(app);
      await f.login(full.key);
      assert.equal((await f.request("/console/jobs")).status, 200);
      await tenants.revokeKey(acme.id, full.id);
      const after = await f.request("/console/jobs");
      assert.equal(after.status, 303);
      assert.equal(after.headers.get("location"), "/console/login");
    } finally {
      await world.close();
    }
  },
);

Deno.test(
  {
    name: "console: two instances on one database share sessions and live events; logout ends both",
  },
  async () => {
    const tdb = await postgresTarget.open();
    const second = openPostgres(tdb.url!, { max: 4 });
    const instances = [tdb.db, second].map((db) => {
      const runtime = new Runtime({
        db,
        actors: [sleepy],
        transport: new TableQueueTransport(db, { pollMs: 50 }),
        logger: jsonLogger("silent"),
      });
      const tenants = new TenantStore(db);
      return {
        runtime,
        tenants,
        app: new Hono().route("/console", consoleRoutes({ runtime, tenants })),
      };
    });
    const [one, two] = instances as [typeof instances[0], typeof instances[0]];
    try {
      const acme = await one.tenants.createTenant("acme");
      const key = (await one.tenants.createKey(acme.id)).key;
      const job =
        (await one.runtime.enqueue("c.sleepy", { n: 7 }, { tenantId: acme.id, delayMs: 3_600_000 }))
          .job.id;

      const onOne = browser(one.app);
      assert.equal((await onOne.login(key)).status, 303);
      const token = await onOne.csrf();
      // The same cookie on the other instance: the session is found there too.
      const onTwo = browser(two.app);
      for (const [k, v] of onOne.jar) onTwo.jar.set(k, v);
      const page = await onTwo.request("/console/jobs");
      assert.equal(page.status, 200);
      assert.ok((await page.text()).includes(job));
      // An action on the second instance with the CSRF token the first one issued.
      const cancel = await onTwo.post(`/console/jobs/${job}/cancel`, { _csrf: token });
      assert.equal(cancel.status, 303);
      assert.equal((await one.runtime.getJob(job)).status, "cancelled");

      // Live events reach a page served by the first instance for a job the second one runs (the
      // first runs nothing: what it hears comes over NOTIFY).
      await two.runtime.start();
      const stream = await one.app.request("/console/events", {
        headers: { cookie: `troupe_console=${onOne.jar.get("troupe_console")}` },
      });
      const events = sseReader(stream);
      await sleep(300); // the stream listens once its first bytes are out
      const live = (await two.runtime.enqueue("c.sleepy", { n: 8 }, { tenantId: acme.id })).job.id;
      const done = await within(
        events.next((e) => e.data.id === live && e.data.terminal),
        10_000,
        "the other instance's job in the stream",
      );
      assert.equal(done.data.status, "succeeded");
      await events.cancel();
      await two.runtime.stop();

      // Logging out on the first instance ends the session on the second.
      const cookie = onOne.jar.get("troupe_console")!;
      assert.equal((await onOne.post("/console/logout", { _csrf: token })).status, 303);
      onTwo.jar.set("troupe_console", cookie);
      const after = await onTwo.request("/console/jobs");
      assert.equal(after.status, 303);
      assert.equal(after.headers.get("location"), "/console/login");
      const [row] = await second.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM troupe_console_sessions",
      );
      assert.equal(row?.n, 0, "the row is gone");
      // Only the hash of a session id is stored: the cookie's value is in no row.
      await onOne.login(key);
      const stored = await second.query<{ id_hash: string }>(
        "SELECT id_hash FROM troupe_console_sessions",
      );
      assert.equal(stored.length, 1);
      assert.notEqual(stored[0]!.id_hash, onOne.jar.get("troupe_console"));
    } finally {
      await two.runtime.stop();
      await second.close();
      await tdb.cleanup();
    }
  },
);

Deno.test(
  { name: "console: bulk retry (dry run, confirm, once), the cache page" },
  async () => {
    const world = await openApiWorld([sleepy, broken], () => ({ perKeyPerMinute: 100_000 }));
    try {
      const { tenants, app, runtime } = world;
      const acme = await tenants.createTenant("acme");
      const globex = await tenants.createTenant("globex");
      const acmeKey = (await tenants.createKey(acme.id)).key;
      const globexKey = (await tenants.createKey(globex.id)).key;
      const readKey = (await tenants.createKey(acme.id, { name: "r", scope: "read" })).key;
      const failed = [
        await enqueue(app, acmeKey, "c.broken", 1),
        await enqueue(app, acmeKey, "c.broken", 2),
      ];
      const foreign = await enqueue(app, globexKey, "c.broken", 3);
      for (const id of [...failed, foreign]) {
        await waitFor(async () => (await runtime.getJob(id)).status === "failed");
      }

      const a = browser(app);
      await a.login(acmeKey);
      const jobs = await (await a.request("/console/jobs?status=failed")).text();
      assert.match(jobs, /id="retry-form"/);
      const token = await a.csrf();
      assert.equal((await a.post("/console/jobs/retry", { actor: "c.broken" })).status, 403);
      assert.equal(
        (await a.post("/console/jobs/retry", { _csrf: token, actor: "c.nope" })).status,
        404,
      );
      const dry = await a.post("/console/jobs/retry", { _csrf: token, actor: "c.broken" });
      assert.equal(dry.status, 200);
      const dryHtml = await dry.text();
      assert.match(dryHtml, /2 failed jobs of c\.broken would be retried/);
      for (const id of failed) assert.ok(dryHtml.includes(id), "its own failed jobs listed");
      assert.ok(!dryHtml.includes(foreign), "not another tenant's");
      const ids = /name="jobIds" value="([^"]+)"/.exec(dryHtml)![1]!;
      assert.equal(
        (await runtime.getJob(failed[0]!)).status,
        "failed",
        "a dry run changes nothing",
      );
      assert.equal(
        (await world.tdb.db.query(
          "SELECT 1 FROM troupe_dead_letters WHERE replayed_at IS NOT NULL",
        ))
          .length,
        0,
      );

      const confirm = { _csrf: token, actor: "c.broken", jobIds: ids, confirm: "1" };
      const done = await (await a.post("/console/jobs/retry", confirm)).text();
      assert.match(done, /2 retried/);
      const again = await (await a.post("/console/jobs/retry", confirm)).text();
      assert.match(again, /0 retried/, "a second click retries nothing");
      const replayed = await world.tdb.db.query<{ job_id: string }>(
        "SELECT job_id FROM troupe_dead_letters WHERE replayed_at IS NOT NULL ORDER BY job_id",
      );
      assert.deepEqual(replayed.map((r) => r.job_id), [...failed].sort());

      const r = browser(app);
      await r.login(readKey);
      assert.ok(!(await (await r.request("/console/jobs")).text()).includes('id="retry-form"'));
      assert.equal(
        (await r.post("/console/jobs/retry", { _csrf: await r.csrf(), actor: "c.broken" })).status,
        403,
      );

      // The cache page: the tenant's figures (this world's cache).
      const key = `${acme.id}:probe`;
      await world.cache.getOrCompute("queryResult", key, () => Promise.resolve(1));
      await world.cache.getOrCompute("queryResult", key, () => Promise.resolve(1));
      const cachePage = await (await a.request("/console/cache")).text();
      assert.match(cachePage, /data-field="hits">1</);
      assert.match(cachePage, /data-field="misses">1</);
      assert.match(cachePage, /50\.0 %/);
      // Keys per TTL class, the tenant's only (the memory store counts them; Redis does not).
      await world.cache.getOrCompute("aggregation", `${acme.id}:agg`, () => Promise.resolve(2));
      await world.cache.getOrCompute("aggregation", `${globex.id}:a1`, () => Promise.resolve(3));
      await world.cache.getOrCompute("aggregation", `${globex.id}:a2`, () => Promise.resolve(3));
      const kindKeys = (html: string, kind: string) =>
        new RegExp(`data-kind="${kind}">[^]*?data-field="keys">([^<]*)<`).exec(html)?.[1];
      const counted = world.cache.store.kind === "memory";
      const tenantPage = await (await a.request("/console/cache")).text();
      if (counted) {
        assert.equal(kindKeys(tenantPage, "queryResult"), "1");
        assert.equal(kindKeys(tenantPage, "aggregation"), "1", "not globex's two");
        assert.equal(kindKeys(tenantPage, "courseOutline"), "0");
        assert.ok(!tenantPage.includes('id="cache-kinds-note"'));
      } else {
        assert.ok(!tenantPage.includes('id="cache-kinds"'));
        assert.match(tenantPage, /id="cache-kinds-note"[^>]*>Keys are counted per TTL class by/);
      }
      // Lookups per class are the instance's: an admin's only.
      assert.ok(!/id="cache-kinds"[^]*data-field="hits"/.test(tenantPage));
      const admin = browser(app);
      await admin.login((await tenants.createKey(acme.id, { admin: true })).key);
      const adminPage = await (await admin.request("/console/cache")).text();
      assert.match(adminPage, /id="cache-kinds"/);
      assert.equal(kindKeys(adminPage, "aggregation"), counted ? "3" : "—");
      assert.match(
        /data-kind="aggregation">[^]*?<\/tr>/.exec(adminPage)![0],
        /data-field="hits">0<[^]*data-field="misses">3</,
      );
    } finally {
      await world.close();
    }
  },
);
