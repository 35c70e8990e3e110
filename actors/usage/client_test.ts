import assert from "node:assert/strict";
import { EgressPolicy } from "../net/egress.ts";
import { generateReports, startUsageApi } from "../../tests/fixtures/usage_api.ts";
import {
  retryAfterMs,
  UpstreamBadAnswer,
  UpstreamRateLimited,
  UpstreamUnauthorized,
  UpstreamUnavailable,
  UsageApiClient,
} from "./client.ts";

const allow = new EgressPolicy({ allow: ["127.0.0.1"] });

Deno.test("retryAfterMs() reads seconds and HTTP dates, 1 s otherwise", () => {
  const now = Date.parse("2026-12-05T10:00:00Z");
  assert.equal(retryAfterMs(new Headers({ "retry-after": "7" }), now), 7000);
  assert.equal(
    retryAfterMs(new Headers({ "retry-after": "Sat, 05 Dec 2026 10:00:30 GMT" }), now),
    30_000,
  );
  assert.equal(retryAfterMs(new Headers({ "retry-after": "soon" }), now), 1000);
  assert.equal(retryAfterMs(new Headers(), now), 1000);
});

Deno.test("the client maps each answer to what the sync does with it", async () => {
  const api = startUsageApi({
    token: "t",
    messages: [
      { id: 1, timestamp: "2026-11-01T00:00:00Z", credits_used: 1.5, report_id: 3 },
      { id: "b", timestamp: "2026-11-01T00:01:00Z", credits_used: 2, report_id: null },
    ],
    reports: generateReports(3),
  });
  let calls = 0;
  const client = new UsageApiClient({
    baseUrl: api.url + "/",
    token: "t",
    egress: allow,
    timeoutMs: 300,
    onCall: () => calls++,
  });
  try {
    const page = await client.page(null, 10);
    assert.deepEqual(page.messages.map((m) => [m.id, m.creditsCents, m.reportId]), [
      ["1", 150n, "3"],
      ["b", 200n, null],
    ]);
    assert.equal(page.nextCursor, null);
    assert.equal(await client.report("3"), "Report 3");
    assert.equal(await client.report("404"), null);
    api.fail({ status: 429, retryAfterSeconds: 2 });
    await assert.rejects(
      client.page(null, 1),
      (e) => (e as UpstreamRateLimited).retryAfterMs === 2000,
    );
    api.fail({ status: 502 });
    await assert.rejects(client.page(null, 1), UpstreamUnavailable);
    api.fail({ status: "timeout" });
    await assert.rejects(client.page(null, 1), UpstreamUnavailable);
    api.fail({ status: 401 });
    await assert.rejects(client.report("1"), UpstreamUnauthorized);
    api.update(1, { credits_used: 1.234 });
    await assert.rejects(client.page(null, 1), UpstreamBadAnswer);
    assert.equal(calls, 8);
    const refused = new UsageApiClient({
      baseUrl: api.url,
      token: "t",
      egress: new EgressPolicy(),
    });
    await assert.rejects(
      refused.page(null, 1),
      (e) => (e as { code?: string }).code === "EGRESS_REFUSED",
    );
  } finally {
    await api.close();
  }
});
