/**
 * The console's data pages in Chromium: a dataset's profile with its histograms as inline SVG,
 * and the tenant's daily usage, each only the tenant's own.
 */
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { datasetActors } from "../../actors/datasets/pipeline.ts";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { PostgresBlobStore } from "../../db/blobs/postgres.ts";
import { API_DRIVERS, openApiWorld } from "../../tests/api_world.ts";
import { waitFor } from "../../tests/harness.ts";
import { localDatasetAdapters } from "../../tests/local_adapters.ts";

const SHOTS = new URL("../../.scratch/console/", import.meta.url);

Deno.test({ name: "console in Chromium: dataset profile and daily usage" }, async () => {
  await Deno.mkdir(SHOTS, { recursive: true });
  const dir = await Deno.makeTempDir();
  let blobs: BlobStore | undefined;
  const world = await openApiWorld((tdb) => {
    blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
    return datasetActors({ ...localDatasetAdapters(), db: tdb.db, blobs });
  }, (tdb) => ({ perKeyPerMinute: 100_000, datasets: { db: tdb.db, blobs: blobs! } }));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => world.app.fetch(req, info),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" });
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
    await browser.close();
    await server.shutdown();
    await world.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
