/**
 * The console's data pages: in Chromium, a dataset's profile with its histograms as inline SVG
 * and the tenant's daily usage; through `app.request()`, a course's search (the API's results,
 * bad input refused on the page); each only the tenant's own.
 */
import assert from "node:assert/strict";
import { datasetActors } from "../../actors/datasets/pipeline.ts";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { PostgresBlobStore } from "../../db/blobs/postgres.ts";
import { API_DRIVERS, openApiWorld } from "../../tests/api_world.ts";
import { waitFor } from "../../tests/harness.ts";
import { localDatasetAdapters } from "../../tests/local_adapters.ts";
import { consoleClient, openCourseWorld, servedInChromium } from "./testing.ts";

const SHOTS = new URL("../../.scratch/console/", import.meta.url);

Deno.test({ name: "console in Chromium: dataset profile and daily usage" }, async () => {
  await Deno.mkdir(SHOTS, { recursive: true });
  const dir = await Deno.makeTempDir();
  let blobs: BlobStore | undefined;
  const world = await openApiWorld((tdb) => {
    blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
    return datasetActors({ ...localDatasetAdapters(), db: tdb.db, blobs });
  }, (tdb) => ({ perKeyPerMinute: 100_000, datasets: { db: tdb.db, blobs: blobs! } }));
  const { base, browser, close } = await servedInChromium(world.app);
  try {
    const acme = await world.tenants.createTenant("acme");
    const other = await world.tenants.createTenant("other");
    const key = (await world.tenants.createKey(acme.id)).key;
    const rows = Array.from({ length: 200 }, (_, i) => `${i},${(i * 7) % 50},name${i % 9}`);
    const res = await fetch(`${base}/api/v1/datasets?name=numbers`, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "text/csv" },
      body: ["id,score,label", ...rows].join("\n") + "\n",
    });
    assert.equal(res.status, 202);
    const { datasetId } = await res.json();
    await waitFor(async () => {
      const d = await (await fetch(`${base}/api/v1/datasets/${datasetId}`, {
        headers: { "x-api-key": key },
      })).json();
      return d.status === "ready" ? d : null;
    }, { what: "the dataset ready", timeoutMs: 60_000 });

    const today = new Date().toISOString().slice(0, 10);
    for (const [tenant, cents, messages] of [[acme.id, 1234, 7], [other.id, 99_900, 1]] as const) {
      await world.tdb.db.query(
        `INSERT INTO troupe_usage_daily (tenant_id, source_id, day, credits_cents, messages)
         VALUES ($1, 's1', $2::date, $3, $4)`,
        [tenant, today, cents, messages],
      );
    }

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}/console/login`);
    await page.fill('input[name="key"]', key);
    await page.click('button[type="submit"]');
    await page.waitForURL(`${base}/console/jobs`);

    await page.click('a:has-text("Datasets")');
    await page.click(`tr[data-dataset="${datasetId}"] a`);
    assert.equal(await page.textContent("h1"), "numbers");
    // Numeric columns get a histogram of bars; the text column none.
    assert.ok(await page.locator('tr[data-column="score"] svg.bars rect').count() > 1);
    assert.equal(await page.locator('tr[data-column="label"] svg').count(), 0);
    await page.screenshot({ path: new URL("dataset.png", SHOTS).pathname, fullPage: true });

    // Its rows, a page at a time.
    await page.click("#show-rows");
    assert.equal(await page.textContent("h1"), "numbers: rows");
    assert.equal(await page.locator("#rows tr[data-row]").count(), 50);
    assert.deepEqual(
      (await page.locator("#rows tr[data-row]").first().locator("td").allTextContents()).slice(1),
      ["0", "0", "name0"],
    );
    const last = Number(await page.locator("#rows tr[data-row]").last().getAttribute("data-row"));
    await page.click('a:has-text("Next")');
    const first = Number(await page.locator("#rows tr[data-row]").first().getAttribute("data-row"));
    assert.ok(first > last, `${first} after ${last}`);
    assert.deepEqual(
      (await page.locator("#rows tr[data-row]").first().locator("td").allTextContents()).slice(1),
      ["50", "0", "name5"],
    );
    await page.screenshot({ path: new URL("dataset-rows.png", SHOTS).pathname, fullPage: true });

    await page.click('a:has-text("Usage")');
    assert.equal(await page.textContent("h1"), "Usage");
    const row = page.locator(`tr[data-day="${today}"] td`);
    assert.deepEqual(await row.allTextContents(), [today, "12.34", "7", "1.76"]);
    assert.equal(
      await page.locator("tr[data-day]").count(),
      1,
      "the other tenant's usage is not shown",
    );
    await page.screenshot({ path: new URL("usage.png", SHOTS).pathname, fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await close();
    await world.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** The rows of a course page's search results: file, page, section, snippet, score. */
function resultRows(html: string): Record<string, string>[] {
  const unescape = (t: string) =>
    t.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'")
      .replace(/&amp;/g, "&");
  return [...html.matchAll(/<tr data-result="\d+">([^]*?)<\/tr>/g)].map(([, row]) =>
    Object.fromEntries(
      [...row!.matchAll(/data-field="(\w+)"[^>]*>([^<]*)</g)].map(([, k, v]) => [k!, unescape(v!)]),
    )
  );
}

Deno.test({ name: "console: a course's search, as the API's, the tenant's own" }, async () => {
  const world = await openCourseWorld();
  try {
    const { acme, other } = world;
    const a = consoleClient(world.app);
    assert.equal((await a.login(acme.key)).status, 303);
    const get = async (query: string, id = acme.courseId) => {
      const res = await a.request(`/console/courses/${id}${query}`);
      return { status: res.status, html: await res.text() };
    };
    const api = async (query: string) =>
      (await (await world.app.request(`/api/v1/courses/${acme.courseId}/search${query}`, {
        headers: { "x-api-key": acme.key },
      })).json()).results as { fileName: string; page: number; section: string; score: number }[];

    // No search asked: the form, no results.
    const plain = await get("");
    assert.equal(plain.status, 200);
    assert.match(
      plain.html,
      /<form method="get" action="\/console\/courses\/[^"]+" [^>]*id="search"/,
    );
    assert.ok(!plain.html.includes("search-results") && !plain.html.includes("search-error"));

    // The results are the API's, in its order, with the page and section of the rare words.
    const found = await get("?q=zebrafish+quokka&k=5");
    assert.equal(found.status, 200);
    const rows = resultRows(found.html);
    const expected = await api("?q=zebrafish%20quokka&k=5");
    assert.ok(expected.length > 0);
    assert.deepEqual(
      rows.map((r) => [r.file, r.page, r.section, r.score]),
      expected.map((r) => [r.fileName, String(r.page), r.section, r.score.toFixed(3)]),
    );
    assert.deepEqual([rows[0]!.file, rows[0]!.page, rows[0]!.section], [
      "biology.pdf",
      "2",
      "Membranes",
    ]);
    assert.match(rows[0]!.snippet!, /zebrafish quokka/);
    assert.match(found.html, /name="q" value="zebrafish quokka"/);
    // Modules and lessons stay on the page under the search.
    assert.match(found.html, /data-lesson="0\.1"/);
    // k bounds the results; it defaults as the API's does.
    const many = await api("?q=membrane+organelle+cell&k=10");
    assert.ok(many.length > 2, `${many.length} results`);
    assert.equal(
      resultRows((await get("?q=membrane+organelle+cell&k=10")).html).length,
      many.length,
    );
    assert.equal(resultRows((await get("?q=membrane+organelle+cell&k=1")).html).length, 1);
    assert.equal(
      resultRows((await get("?q=membrane")).html).length,
      (await api("?q=membrane")).length,
    );

    const none = await get("?q=xylophone+zeppelin");
    assert.equal(none.status, 200);
    assert.match(none.html, /id="search-none"/);
    assert.deepEqual(resultRows(none.html), []);

    // Bad input: a message on the course page, a 400, never a 500.
    const refused = async (query: string, message: RegExp) => {
      const r = await get(query);
      assert.equal(r.status, 400, query);
      const alert = /<p class="error" role="alert" id="search-error">([^<]*)</.exec(r.html);
      assert.ok(alert, `${query}: a message`);
      assert.match(alert[1]!, message, query);
      assert.match(r.html, /<h1>Biology 101<\/h1>/, "the course is still shown");
      assert.deepEqual(resultRows(r.html), []);
    };
    await refused("?q=", /Type a word/);
    await refused("?q=+++", /Type a word/);
    await refused(`?q=${"a".repeat(501)}`, /at most 500 characters/);
    await refused("?q=cell&k=0", /whole number from 1 to 50/);
    await refused("?q=cell&k=51", /whole number from 1 to 50/);
    await refused("?q=cell&k=two", /whole number from 1 to 50/);
    await refused("?q=cell&k=2.5", /whole number from 1 to 50/);
    await refused("?q=cell%00", /NUL/);
    // An empty k is the default.
    assert.equal((await get("?q=cell&k=")).status, 200);
    // The query is shown escaped.
    const markup = await get(`?q=${encodeURIComponent('<b id="x">zebrafish</b>')}`);
    assert.equal(markup.status, 200);
    assert.ok(!markup.html.includes('<b id="x">'), "the query is escaped");
    assert.match(markup.html, /value="&lt;b id=&quot;x&quot;&gt;zebrafish&lt;\/b&gt;"/);

    // Another tenant's course: 404, with or without a search, and nothing of it shown.
    for (const query of ["", "?q=zebrafish+quokka", "?q="]) {
      const theirs = await get(query, other.courseId);
      assert.equal(theirs.status, 404, query);
      assert.ok(!theirs.html.includes("Secret notes") && !theirs.html.includes("secret.pdf"));
    }
    // Its own search finds its own file only; acme's never shows it.
    const b = consoleClient(world.app);
    await b.login(other.key);
    const own = resultRows(
      await (await b.request(`/console/courses/${other.courseId}?q=zebrafish+quokka`)).text(),
    );
    assert.deepEqual([own[0]!.file, own[0]!.page], ["secret.pdf", "1"]);
    assert.ok(rows.every((r) => r.file === "biology.pdf"));
  } finally {
    await world.close();
  }
});
