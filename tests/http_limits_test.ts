/**
 * The composed server takes its request limits from the environment: a form field's size, the
 * JSON cap and an upload's minimum rate, as set by env vars, reach the routes (the header
 * timeout, which `run()` applies to the listener, is checked in main_test.ts).
 */
import assert from "node:assert/strict";
import { loadConfig } from "../deploy/config.ts";
import { compose } from "../main.ts";
import { within } from "./harness.ts";
import { hugeFieldForm, part, trickleBody } from "./hostile/http_attacks.ts";

Deno.test({
  name: "env limits reach the routes: field size, JSON cap, minimum upload rate",
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "troupe-limits-" });
  const troupe = await compose(loadConfig({
    DATA_DIR: dir,
    LOG_LEVEL: "silent",
    UPLOAD_MAX_FIELD_BYTES: "100",
    HTTP_MAX_JSON_BYTES: "2048",
    UPLOAD_MIN_BYTES_PER_SECOND: "5000",
    UPLOAD_RATE_WINDOW_MS: "300",
  }));
  try {
    const key = troupe.newDevKey!;
    const form = hugeFieldForm({ field: "name", before: part("format", "csv") });
    const field = await troupe.app.request("/api/datasets", {
      method: "POST",
      headers: { "x-api-key": key, "content-type": form.contentType },
      body: form.body,
    });
    assert.equal(field.status, 413);
    assert.deepEqual((await field.json()).error.details, { field: "name", limitBytes: 100 });

    const json = await troupe.app.request("/api/actors/system.echo/jobs", {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({ input: { message: "x".repeat(5000) } }),
    });
    assert.equal(json.status, 413);
    assert.deepEqual((await json.json()).error.details, { limitBytes: 2048 });

    const slow = trickleBody("a,b\n" + "1,2\n".repeat(2000), { chunkBytes: 100, intervalMs: 100 });
    const trickle = await within(
      Promise.resolve(troupe.app.request("/api/datasets?format=csv", {
        method: "POST",
        headers: { "x-api-key": key, "content-type": "text/csv" },
        body: slow.body,
      })),
      20_000,
      "the slow upload was not cut off",
    );
    assert.equal(trickle.status, 408);
    assert.equal((await trickle.json()).error.code, "UPLOAD_TOO_SLOW");
  } finally {
    await troupe.close();
    await Deno.remove(dir, { recursive: true });
  }
});
