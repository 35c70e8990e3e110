/**
 * The console in a real headless Chromium (Debian's, tests/services.sh installs it) driven by
 * playwright-core: login, every page without console errors, live progress, Cancel and Replay
 * checked through the API, a bulk retry (dry run, then Confirm), the cache page, an admin pausing
 * and resuming an actor and a schedule and reading an actor's keys; a course's search typed and
 * submitted. Screenshots go to .scratch/console/.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { z } from "zod";
import { defineActor, lastSlot, parseSchedule } from "@troupe/runtime";
import { openApiWorld } from "../../tests/api_world.ts";
import { waitFor } from "../../tests/harness.ts";
import { openCourseWorld, servedInChromium } from "./testing.ts";

const SHOTS = new URL("../../.scratch/console/", import.meta.url);

/** Gates the slow actor's steps: the test opens each when it wants the next change. */
const gates = { started: Promise.withResolvers<void>(), half: Promise.withResolvers<void>() };

const slow = defineActor({
  name: "b.slow",
  input: z.object({ n: z.number().int() }),
  key: (i) => `b.slow:${i.n}`,
  timeoutMs: 60_000,
  handler: async (input, ctx) => {
    await gates.started.promise;
    ctx.progress(40, "working");
    await gates.half.promise;
    return { done: input.n };
  },
});
const later = defineActor({
  name: "b.later",
  input: z.object({ n: z.number().int() }),
  key: (i) => `b.later:${i.n}`,
  handler: (input) => ({ n: input.n }),
});
const broken = defineActor({
  name: "b.broken",
  input: z.object({ n: z.number().int() }),
  key: (i) => `b.broken:${i.n}`,
  retries: 0,
  handler: () => {
    throw new Error("always broken");
  },
});

const tick = defineActor({
  name: "b.tick",
  input: z.object({}),
  schedule: "*/5 * * * *",
  scheduleInput: {},
  handler: () => ({ ticked: true }),
});

Deno.test(
  { name: "console in Chromium: pages, live progress, cancel, replay, pause and resume" },
  async () => {
    await Deno.mkdir(SHOTS, { recursive: true });
    // On QStash a paused actor's messages come back every `pauseRecheckMs`: 1 s here.
    const world = await openApiWorld(
      [slow, later, broken, tick],
      () => ({ perKeyPerMinute: 100_000 }),
      { runtime: { pauseRecheckMs: 1000 } },
    );
    const { base, browser, close } = await servedInChromium(world.app);
    try {
      const { tenants } = world;
      const tenant = await tenants.createTenant("acme");
      const key = (await tenants.createKey(tenant.id)).key;
      const api = async (path: string, init: RequestInit = {}) => {
        const res = await fetch(`${base}/api/v1${path}`, {
          ...init,
          headers: { "content-type": "application/json", "x-api-key": key },
        });
        return { status: res.status, body: await res.json() };
      };
      const enqueue = async (actor: string, n: number, delayMs?: number) => {
        const res = await api(`/actors/${actor}/jobs`, {
          method: "POST",
          body: JSON.stringify({ input: { n }, ...(delayMs ? { delayMs } : {}) }),
        });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        return res.body.jobId as string;
      };

      const slowJob = await enqueue("b.slow", 1);
      const delayed = await enqueue("b.later", 2, 3_600_000);
      await enqueue("b.broken", 3);
      await waitFor(async () => (await api(`/jobs/${slowJob}`)).body.status === "running", {
        what: "the slow job running",
      });
      const deadLetterId = await waitFor(
        async () => (await api("/dead-letters")).body.items[0]?.id,
        {
          what: "a dead letter",
        },
      );

      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(e.message));
      const shot = (p: Page, name: string) =>
        p.screenshot({ path: new URL(`${name}.png`, SHOTS).pathname, fullPage: true });

      await page.goto(`${base}/console/jobs`);
      assert.equal(new URL(page.url()).pathname, "/console/login");
      await page.fill('input[name="key"]', "trp_wrong");
      await page.click('button[type="submit"]');
      assert.match(await page.textContent('[role="alert"]') ?? "", /unknown or revoked/);
      errors.length = 0; // the 401 of the refused login is logged by the browser

      await page.fill('input[name="key"]', key);
      await page.click('button[type="submit"]');
      await page.waitForURL(`${base}/console/jobs`);
      assert.equal(await page.textContent("h1"), "Jobs");
      await page.waitForSelector(`tr[data-job="${slowJob}"]`);
      await page.waitForSelector('table[data-stream="open"]');

      // Live: the slow job's progress reaches the open page, then its result.
      gates.started.resolve();
      const row = `tr[data-job="${slowJob}"]`;
      // The bar's value property reflects to its attribute: a selector waits for it.
      await page.waitForSelector(`${row} progress[value="40"]`);
      assert.equal(await page.textContent(`${row} [data-field="message"]`), "working");
      await shot(page, "jobs-progress");
      gates.half.resolve();
      await page.waitForSelector(`${row} [data-field="status"].s-succeeded`);
      assert.match(await page.textContent(`${row} [data-field="outcome"]`) ?? "", /"done":1/);
      assert.equal(await page.locator(`${row} [data-field="cancel"]`).count(), 0);

      // Cancel the delayed job.
      await page.click(`tr[data-job="${delayed}"] button:has-text("Cancel")`);
      await page.waitForSelector('[role="status"]');
      assert.equal((await api(`/jobs/${delayed}`)).body.status, "cancelled");
      await shot(page, "jobs");

      // Filters.
      await page.selectOption('select[name="status"]', "cancelled");
      await page.click('button:has-text("Filter")');
      await page.waitForURL(/status=cancelled/);
      assert.equal(await page.locator("tr[data-job]").count(), 1);

      // Replay the dead letter.
      await page.click('a:has-text("Dead letters")');
      assert.equal(await page.textContent("h1"), "Dead letters");
      await page.click("details summary");
      assert.match(await page.textContent("details pre") ?? "", /always broken/);
      await shot(page, "dead-letters");
      await page.click(`tr[data-dead-letter="${deadLetterId}"] button:has-text("Replay")`);
      await page.waitForSelector('[role="status"]');
      // The replay fails again, into a dead letter of its own: find the first one by id.
      const dl = (await api("/dead-letters")).body.items.find((d: { id: string }) =>
        d.id === deadLetterId
      );
      assert.ok(dl.replayedAt, "the dead letter was replayed");
      assert.ok(dl.replayJobId);

      // Bulk retry: the replay's failure and another one, a dry run first, then Confirm.
      await waitFor(async () => (await api(`/jobs/${dl.replayJobId}`)).body.status === "failed", {
        what: "the replay failing",
      });
      const another = await enqueue("b.broken", 4);
      await waitFor(async () => (await api(`/jobs/${another}`)).body.status === "failed", {
        what: "another failure",
      });
      await page.goto(`${base}/console/jobs?status=failed&actor=b.broken`);
      await page.click('#retry-form button:has-text("Retry failed jobs")');
      await page.waitForSelector("#retry-count");
      assert.match(await page.textContent("#retry-count") ?? "", /^2 failed jobs of b\.broken/);
      for (const id of [dl.replayJobId, another]) {
        await page.waitForSelector(`#retry-jobs tr[data-job="${id}"]`);
      }
      const pending = await world.runtime.retryableFailures({ tenantId: tenant.id });
      assert.equal(pending.length, 2, "the dry run replayed nothing");
      await shot(page, "retry-dry-run");
      await page.click('#retry-confirm button:has-text("Confirm")');
      await page.waitForSelector("#retry-count.notice");
      assert.equal(await page.textContent("#retry-count"), "2 retried.");
      assert.equal(await page.locator("#retry-jobs tr[data-job] code").count(), 6);
      await shot(page, "retry-done");
      const left = await world.runtime.retryableFailures({ tenantId: tenant.id });
      assert.ok(
        !left.some((f) => f.jobId === another || f.jobId === dl.replayJobId),
        "each retried once",
      );

      await page.click('a:has-text("Cache")');
      assert.equal(await page.textContent("h1"), "Cache");
      await page.waitForSelector('#cache-stats [data-field="hit-ratio"]');
      await shot(page, "cache");

      await page.click('a:has-text("Actors")');
      assert.equal(await page.textContent("h1"), "Actors");
      await page.waitForSelector('tr[data-actor="b.slow"]');
      await shot(page, "actors");
      assert.equal(await page.locator('tr[data-actor="b.slow"] button').count(), 0, "no pause");
      await page.click('a:has-text("Instances")');
      assert.equal(await page.textContent("h1"), "Instances");
      await page.waitForSelector(`tr[data-instance="${world.runtime.workerId}"]`);
      await page.click('a:has-text("Schedules")');
      assert.equal(await page.textContent("h1"), "Schedules");

      // The dark scheme: the same page, its own colours (no error, a dark background).
      const dark = await browser.newPage({ colorScheme: "dark" });
      dark.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await dark.context().addCookies(await page.context().cookies());
      await dark.goto(`${base}/console/jobs`);
      // Runs in the page: this file's types have no DOM.
      type Styles = { getComputedStyle(e: unknown): { backgroundColor: string } };
      const background = await dark.locator("body").evaluate((b) =>
        (globalThis as unknown as Styles).getComputedStyle(b).backgroundColor
      );
      assert.equal(background, "rgb(21, 23, 27)");
      await shot(dark, "jobs-dark");
      await dark.close();

      await page.click('button:has-text("Log out")');
      await page.waitForURL(`${base}/console/login`);

      // An admin pauses an actor, sees it paused, resumes it; its jobs wait, then run.
      const adminKey = (await tenants.createKey(tenant.id, { admin: true })).key;
      await page.fill('input[name="key"]', adminKey);
      await page.click('button[type="submit"]');
      await page.waitForURL(`${base}/console/jobs`);
      await page.click('a:has-text("Instances")');
      await page.waitForSelector(`tr[data-instance="${world.runtime.workerId}"]`);
      await shot(page, "instances");
      await page.click('a:has-text("Actors")');
      const laterRow = 'tr[data-actor="b.later"]';
      assert.match(await page.textContent(`${laterRow} [data-field="outcomes"]`) ?? "", /0 \/ 0/);
      assert.match(
        await page.textContent('tr[data-actor="b.slow"] [data-field="rate"]') ?? "",
        /100/,
      );
      await page.click(`${laterRow} button:has-text("Pause")`);
      await page.waitForSelector('[role="status"]');
      assert.match(await page.textContent(`${laterRow} [data-field="pause"]`) ?? "", /paused/);
      assert.deepEqual((await world.runtime.paused()).map((x) => x.actor), ["b.later"]);
      const waiting = await enqueue("b.later", 5);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await api(`/jobs/${waiting}`)).body.status, "queued");
      await shot(page, "actors-paused");
      await page.click(`${laterRow} button:has-text("Resume")`);
      await page.waitForSelector('[role="status"]');
      assert.deepEqual(await world.runtime.paused(), []);
      await waitFor(async () => (await api(`/jobs/${waiting}`)).body.status === "succeeded", {
        what: "the job after resume",
      });
      assert.equal((await api(`/jobs/${waiting}`)).body.attempts, 1);

      // An admin pauses and resumes a schedule; its latest slot's job and result show.
      const slot = lastSlot(parseSchedule("*/5 * * * *"), new Date())!;
      const { job: tickJob } = await world.runtime.fireSchedule("b.tick", slot);
      await waitFor(async () => (await world.runtime.getJob(tickJob.id)).status === "succeeded", {
        what: "the scheduled job",
      });
      await page.click('a:has-text("Schedules")');
      const tickRow = 'tr[data-schedule="b.tick"]';
      await page.waitForSelector(`${tickRow} [data-field="last"] .s-succeeded`);
      assert.match(await page.textContent(tickRow) ?? "", /"ticked":true/);
      await page.click(`${tickRow} button:has-text("Pause")`);
      await page.waitForSelector('[role="status"]');
      assert.match(await page.textContent(`${tickRow} [data-field="pause"]`) ?? "", /paused/);
      assert.deepEqual((await world.runtime.pausedSchedules()).map((x) => x.actor), ["b.tick"]);
      await shot(page, "schedules-paused");
      await page.click(`${tickRow} button:has-text("Resume")`);
      await page.waitForSelector('[role="status"]');
      assert.deepEqual(await world.runtime.pausedSchedules(), []);
      await page.click('a:has-text("Cache")');
      await page.waitForSelector("#cache-kinds");
      await shot(page, "cache-admin");
      await page.click('a:has-text("Actors")');
      await page.click('tr[data-actor="b.slow"] a');
      assert.equal(await page.textContent("h1"), "Keys of b.slow");
      await page.waitForSelector('tr[data-key="b.slow:1"]');
      assert.match(
        await page.textContent('tr[data-key="b.slow:1"] [data-field="lease"]') ?? "",
        /free/,
      );
      await shot(page, "keys");
      assert.deepEqual(errors, []);
    } finally {
      gates.started.resolve();
      gates.half.resolve();
      await close();
      await world.close();
    }
  },
);

Deno.test({ name: "console in Chromium: a course's search, typed and submitted" }, async () => {
  await Deno.mkdir(SHOTS, { recursive: true });
  const world = await openCourseWorld();
  const { base, browser, close } = await servedInChromium(world.app);
  try {
    const { acme, other } = world;
    const expected = (await (await fetch(
      `${base}/api/v1/courses/${acme.courseId}/search?q=zebrafish%20quokka&k=10`,
      { headers: { "x-api-key": acme.key } },
    )).json()).results as { fileName: string; page: number; section: string }[];
    assert.ok(expected.length > 0);

    const errors: string[] = [];
    const watch = (p: Page) => {
      p.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      p.on("pageerror", (e) => errors.push(e.message));
    };
    const page = await browser.newPage();
    watch(page);
    await page.goto(`${base}/console/login`);
    await page.fill('input[name="key"]', acme.key);
    await page.click('button[type="submit"]');
    await page.waitForURL(`${base}/console/jobs`);
    await page.click('a:has-text("Courses")');
    await page.click(`tr[data-course="${acme.courseId}"] a`);
    assert.equal(await page.textContent("h1"), "Biology 101");
    assert.equal(await page.locator("#search-results").count(), 0);

    await page.fill('#search input[name="q"]', "zebrafish quokka");
    await page.selectOption('#search select[name="k"]', "10");
    await page.click('#search button[type="submit"]');
    await page.waitForSelector("#search-results");
    const url = new URL(page.url());
    assert.equal(url.pathname, `/console/courses/${acme.courseId}`);
    assert.equal(url.searchParams.get("q"), "zebrafish quokka");
    const cells = async (row: number) =>
      await page.locator(`#search-results tr[data-result="${row}"] td`).allTextContents();
    assert.equal(await page.locator("#search-results tr[data-result]").count(), expected.length);
    const first = await cells(0);
    assert.deepEqual(first.slice(0, 3), ["biology.pdf", "2", "Membranes"]);
    assert.deepEqual(first.slice(0, 3), [
      expected[0]!.fileName,
      String(expected[0]!.page),
      expected[0]!.section,
    ]);
    assert.match(first[3]!, /zebrafish quokka/);
    assert.ok(Number(first[4]) > 0, `a score: ${first[4]}`);
    // The form keeps what was asked.
    assert.equal(await page.inputValue('#search input[name="q"]'), "zebrafish quokka");
    assert.equal(await page.inputValue('#search select[name="k"]'), "10");
    // Lessons are still listed below.
    assert.ok(await page.locator("li[data-lesson]").count() > 0);
    await page.screenshot({
      path: new URL("course-search.png", SHOTS).pathname,
      fullPage: true,
    });

    const dark = await browser.newPage({ colorScheme: "dark" });
    watch(dark);
    await dark.context().addCookies(await page.context().cookies());
    await dark.goto(page.url());
    await dark.waitForSelector("#search-results");
    await dark.screenshot({
      path: new URL("course-search-dark.png", SHOTS).pathname,
      fullPage: true,
    });
    await dark.close();

    // Nothing matches: said so.
    await page.fill('#search input[name="q"]', "xylophone zeppelin");
    await page.click('#search button[type="submit"]');
    await page.waitForSelector("#search-none");
    assert.equal(await page.locator("#search-results").count(), 0);
    assert.deepEqual(errors, []);

    // Blank: the server's message on the page (the browser logs the 400 itself).
    await page.fill('#search input[name="q"]', "   ");
    await page.click('#search button[type="submit"]');
    await page.waitForSelector("#search-error");
    assert.match(await page.textContent("#search-error") ?? "", /Type a word/);
    assert.equal(await page.textContent("h1"), "Biology 101");
    await page.screenshot({
      path: new URL("course-search-refused.png", SHOTS).pathname,
      fullPage: true,
    });
    assert.ok(errors.every((e) => /status of 400/.test(e)), errors.join("\n"));
    errors.length = 0;

    // Another tenant's course is not found, search or not.
    const res = await page.goto(`${base}/console/courses/${other.courseId}?q=zebrafish`);
    assert.equal(res?.status(), 404);
    assert.ok(!(await page.content()).includes("Secret notes"));
    assert.ok(errors.every((e) => /status of 404/.test(e)), errors.join("\n"));
  } finally {
    await close();
    await world.close();
  }
});
