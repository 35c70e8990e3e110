/**
 * The package README's example, imported by package name as a user's app would, on in-memory
 * PGlite: a job enqueued over HTTP succeeds, bad requests get a 4xx JSON error, and the README
 * shows exactly the code that runs here.
 */
import assert from "node:assert/strict";
import { openPglite } from "@troupe/runtime/pglite";
import type { JobView } from "@troupe/runtime";
import { start } from "./main.ts";

async function openExample() {
  const db = await openPglite();
  const { app, runtime } = await start(db);
  return {
    app,
    async close() {
      await runtime.stop();
      await db.close();
    },
  };
}

function post(body: string): RequestInit {
  return { method: "POST", headers: { "content-type": "application/json" }, body };
}

Deno.test("the README example runs a job enqueued over HTTP to success", async () => {
  const { app, close } = await openExample();
  try {
    const res = await app.request("/api/actors/greet/jobs", post('{"input":{"name":"Ada"}}'));
    assert.equal(res.status, 202);
    const { jobId } = await res.json() as { jobId: string };
    let job: JobView | undefined;
    for (let i = 0; i < 200; i++) {
      job = await (await app.request(`/api/jobs/${jobId}`)).json() as JobView;
      if (job.status === "succeeded" || job.status === "failed") break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(job?.status, "succeeded");
    assert.deepEqual(job?.result, { greeting: "hello Ada" });
  } finally {
    await close();
  }
});

Deno.test("the README example answers bad requests with a 4xx JSON error", async () => {
  const { app, close } = await openExample();
  try {
    const cases: [string, string, number, string][] = [
      ["/api/actors/greet/jobs", '{"input":{"name":""}}', 400, "INVALID_INPUT"],
      ["/api/actors/greet/jobs", "not json", 400, "VALIDATION_FAILED"],
      [
        "/api/actors/greet/jobs",
        '{"input":{"name":"Ada"},"priority":1e9}',
        400,
        "VALIDATION_FAILED",
      ],
      ["/api/actors/nobody/jobs", '{"input":{}}', 404, "NOT_FOUND"],
    ];
    for (const [path, body, status, code] of cases) {
      const res = await app.request(path, post(body));
      assert.equal(res.status, status, `${path} ${body}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
    }
    const missing = await app.request("/api/jobs/no-such-job");
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, "NOT_FOUND");
  } finally {
    await close();
  }
});

Deno.test("the package README shows the example's code as it runs here", async () => {
  const readme = await Deno.readTextFile(
    new URL("../../actors/runtime/README.md", import.meta.url),
  );
  const block = readme.match(/```ts\n([\s\S]*?)```/)?.[1];
  assert.equal(block, await Deno.readTextFile(new URL("./main.ts", import.meta.url)));
  const intro = readme.split(/^## /m)[0]!;
  assert.ok(intro.trimEnd().split("\n").length < 30, "the example section stays under 30 lines");
});
