/**
 * Report sources and their syncs (tenant-scoped; another tenant's source is a 404):
 *
 * - `POST /api/sources` `{ name, baseUrl, token, pageSize?, concurrency?, requestsPerMinute?,
 *   schedule? }` → 201; the token is sealed and never returned; `baseUrl` must pass the
 *   egress rule;
 * - `GET /api/sources`, `GET|PATCH|DELETE /api/sources/:id`;
 * - `POST /api/sources/:id/test`: one real call → `{ ok, latencyMs }`, or `ok: false` with the
 *   error;
 * - `POST /api/sources/:id/sync` `{ callbackUrl? }` → 202 `{ jobId, created }` (the running
 *   sync's when one runs, `created: false`);
 * - a source's `callbackUrl` (and a sync's) is called back with a signed event when each sync
 *   ends (actors/system/callback.ts); it passes the egress rule as `baseUrl` does;
 * - `GET /api/sources/:id/syncs`: the history with its counters, newest first.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { toErrorRecord } from "@troupe/runtime";
import { UsageApiClient } from "../actors/usage/client.ts";
import { SourceInput, SourcePatch } from "../actors/usage/sources.ts";
import { listSyncs, startSync, type UsageDeps } from "../actors/usage/sync.ts";
import { principalOf } from "./auth.ts";
import { acceptCallbackUrl, CallbackUrl } from "./jobs.ts";
import type { AppEnv } from "./env.ts";
import { declare } from "./openapi.ts";
import { jsonBody, parseBody, pathId } from "./validate.ts";

const tags = ["sources"];

const Source = z.object({
  id: z.string(),
  name: z.string(),
  baseUrl: z.string(),
  pageSize: z.number(),
  concurrency: z.number(),
  requestsPerMinute: z.number(),
  schedule: z.string(),
  nextRunAt: z.string().nullable(),
  currentSyncId: z.string().nullable(),
  callbackUrl: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
}).openapi("UsageSource");

const Sync = z.object({
  id: z.string(),
  jobId: z.string(),
  sourceId: z.string(),
  trigger: z.enum(["manual", "schedule", "catch-up"]),
  scheduledFor: z.string().nullable(),
  status: z.enum(["running", "succeeded", "failed", "cancelled"]),
  pages: z.number(),
  messages: z.object({ new: z.number(), seen: z.number(), changed: z.number() }),
  reports: z.object({ fetched: z.number(), cached: z.number(), missing: z.number() }),
  calls: z.number(),
  errors: z.number(),
  rateLimited: z.number(),
  error: z.unknown(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
}).openapi("UsageSync");

const TestResult = z.object({
  ok: z.boolean(),
  latencyMs: z.number(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

const syncBody = z.object({ callbackUrl: CallbackUrl }).strict();

export function sourceRoutes(usage: UsageDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  const sources = usage.sources;
  declare(app, {
    method: "post",
    path: "/sources",
    tags,
    summary: "Connect a usage API (the token is sealed and never returned)",
    body: SourceInput,
    responses: { 201: { description: "The source", schema: Source } },
  }, async function createSource(c) {
    const body = parseBody(await jsonBody(c), SourceInput);
    const { tenantId } = principalOf(c);
    const callbackUrl = await acceptCallbackUrl(usage.callbacks, tenantId, body.callbackUrl);
    return c.json(await sources.create(tenantId, { ...body, callbackUrl }), 201);
  });
  declare(app, {
    method: "get",
    path: "/sources",
    tags,
    summary: "The tenant's sources",
    responses: { 200: { description: "Sources", schema: z.object({ items: z.array(Source) }) } },
  }, async function listSources(c) {
    return c.json({ items: await sources.list(principalOf(c).tenantId) });
  });
  declare(app, {
    method: "get",
    path: "/sources/:id",
    tags,
    summary: "A source",
    responses: { 200: { description: "The source", schema: Source } },
  }, async function getSource(c) {
    return c.json(await sources.get(principalOf(c).tenantId, pathId(c, "source")));
  });
  declare(app, {
    method: "patch",
    path: "/sources/:id",
    tags,
    summary: "Change a source (a new schedule restarts its slots from now)",
    body: SourcePatch,
    responses: { 200: { description: "The source", schema: Source } },
  }, async function patchSource(c) {
    const id = pathId(c, "source");
    const body = parseBody(await jsonBody(c), SourcePatch);
    const { tenantId } = principalOf(c);
    if (body.callbackUrl) {
      body.callbackUrl = await acceptCallbackUrl(usage.callbacks, tenantId, body.callbackUrl);
    }
    return c.json(await sources.update(tenantId, id, body));
  });
  declare(app, {
    method: "delete",
    path: "/sources/:id",
    tags,
    summary: "Remove a source and its sync history (its usage stays)",
    responses: { 204: { description: "Removed" } },
  }, async function deleteSource(c) {
    await sources.delete(principalOf(c).tenantId, pathId(c, "source"));
    return c.body(null, 204);
  });
  declare(app, {
    method: "post",
    path: "/sources/:id/test",
    tags,
    summary: "One real call to the source's API: `{ok, latencyMs}` or the error",
    responses: { 200: { description: "What the call came to", schema: TestResult } },
  }, async function testSource(c) {
    const s = await sources.forSync(principalOf(c).tenantId, pathId(c, "source"));
    const client = new UsageApiClient({
      baseUrl: s.baseUrl,
      token: s.token,
      egress: sources.egress,
      timeoutMs: usage.callTimeoutMs ?? 15_000,
    });
    const began = performance.now();
    try {
      await client.page(null, 1);
      return c.json({ ok: true, latencyMs: Math.round(performance.now() - began) });
    } catch (err) {
      const { code, message } = toErrorRecord(err);
      return c.json({
        ok: false,
        latencyMs: Math.round(performance.now() - began),
        error: { code, message },
      });
    }
  });
  declare(app, {
    method: "post",
    path: "/sources/:id/sync",
    tags,
    summary: "Sync now; while one runs, answers the running one",
    description: "`callbackUrl` (else the source's) is called back when the sync this call " +
      "starts ends; a sync running already keeps its own (`created: false`).",
    body: syncBody,
    responses: {
      202: {
        description: "The sync's job",
        schema: z.object({ jobId: z.string(), created: z.boolean() }),
      },
    },
  }, async function syncSource(c) {
    const id = pathId(c, "source");
    const { tenantId } = principalOf(c);
    // The body is optional: none, an empty one, or JSON.
    const raw = c.req.raw.body === null || c.req.header("content-length") === "0"
      ? {}
      : await jsonBody(c);
    const body = parseBody(raw, syncBody);
    const callbackUrl = body.callbackUrl !== undefined
      ? await acceptCallbackUrl(usage.callbacks, tenantId, body.callbackUrl)
      : (await sources.get(tenantId, id)).callbackUrl;
    const { jobId, created } = await startSync(usage, {
      tenantId,
      sourceId: id,
      trigger: "manual",
      callbackUrl: callbackUrl ?? null,
    });
    return c.json({ jobId, created }, 202);
  });
  declare(app, {
    method: "get",
    path: "/sources/:id/syncs",
    tags,
    summary: "The source's syncs with their counters, newest first",
    responses: { 200: { description: "Syncs", schema: z.object({ items: z.array(Sync) }) } },
  }, async function sourceSyncs(c) {
    const tenantId = principalOf(c).tenantId;
    const id = pathId(c, "source");
    await sources.get(tenantId, id);
    return c.json({ items: await listSyncs(usage.db, tenantId, id) });
  });
  return app;
}
