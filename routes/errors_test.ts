import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  CancelledError,
  ConflictError,
  IdempotencyKeyReusedError,
  InputError,
  jsonLogger,
  NonRetryableError,
  NotFoundError,
  PayloadTooLargeError,
  TimeoutError,
  TroupeError,
  UploadStalledError,
  UploadTooSlowError,
  ValidationError,
} from "@troupe/runtime";
import { BlobGoneError } from "../db/blobs/refs.ts";
import type { AppEnv } from "./env.ts";
import { onError, statusOf } from "./errors.ts";
import { requestId } from "./request_id.ts";

Deno.test("statusOf() answers each runtime error with its status", () => {
  const cases: [unknown, number][] = [
    [new ValidationError("bad"), 400],
    [new TroupeError("INVALID_INPUT", "bad input"), 400],
    [new NotFoundError("job", "x"), 404],
    [new UploadStalledError(10), 408],
    [new UploadTooSlowError("slow", {}), 408],
    [new ConflictError("busy"), 409],
    [new IdempotencyKeyReusedError("k"), 409],
    [new CancelledError(), 409],
    [new PayloadTooLargeError(1), 413],
    [new TroupeError("DB_TIMEOUT", "no answer"), 503],
    [new TimeoutError(5), 504],
  ];
  for (const [err, status] of cases) assert.equal(statusOf(err), status, String(err));
});

Deno.test("statusOf() answers bad input and non-retryable failures with 422, whatever their code", () => {
  assert.equal(statusOf(new InputError("PDF_TOO_COMPLEX", "too complex")), 422);
  assert.equal(statusOf(new NonRetryableError("no", { code: "NOT_FOUND" })), 422);
});

Deno.test("statusOf() answers the app's own codes, and 500 for any other error", () => {
  const cases: [unknown, number][] = [
    [new TroupeError("INVALID_JSON", "x"), 400],
    [new TroupeError("BAD_GZIP", "x"), 400],
    [new TroupeError("FORBIDDEN", "x"), 403],
    [new TroupeError("NOT_EMBEDDED", "x"), 409],
    [new TroupeError("UNSUPPORTED_MEDIA_TYPE", "x"), 415],
    [new TroupeError("BAD_XLSX", "x"), 422],
    [new TroupeError("SHEET_NOT_FOUND", "x"), 422],
    [new TroupeError("TOO_MANY_COLUMNS", "x"), 422],
    [new BlobGoneError("abc"), 503],
    [new TroupeError("LEASE_LOST", "x"), 500],
    [new Error("boom"), 500],
    ["not an error", 500],
  ];
  for (const [err, status] of cases) assert.equal(statusOf(err), status, String(err));
});

/** An app whose one route throws `err`, answered by `onError`. */
async function answerTo(err: unknown): Promise<{ res: Response; text: string }> {
  const app = new Hono<AppEnv>();
  app.use(requestId());
  app.get("/x", () => {
    throw err;
  });
  app.onError(onError(jsonLogger("silent")));
  const res = await app.request("/x");
  return { res, text: await res.text() };
}

Deno.test("onError answers a TroupeError mapped to a 5xx with that status, its code and message, and no stack", async () => {
  const cases: [TroupeError, number][] = [
    [new TroupeError("UPSTREAM_UNAVAILABLE", "the usage API did not answer"), 502],
    [new TimeoutError(5), 504],
    [new TroupeError("DB_TIMEOUT", "no answer"), 503],
    [new TroupeError("UPSTREAM_RATE_LIMITED", "slow down", { details: { internal: "x" } }), 503],
  ];
  for (const [err, status] of cases) {
    const { res, text } = await answerTo(err);
    assert.equal(res.status, status, `${err.code}: ${text}`);
    assert.equal(res.headers.get("content-type"), "application/json");
    const body = JSON.parse(text);
    assert.deepEqual(Object.keys(body), ["error"]);
    assert.equal(body.error.code, err.code);
    assert.equal(body.error.message, err.message);
    assert.equal(body.error.requestId, res.headers.get("x-request-id"));
    assert.equal(body.error.details, undefined, "no details of a server error");
    assert.ok(!/\.ts:\d+:\d+|\bstack\b/.test(text), `no stack trace: ${text}`);
  }
  const { res } = await answerTo(new TroupeError("DB_TIMEOUT", "no answer"));
  assert.equal(res.headers.get("retry-after"), "5", "a 503 says when to try again");
});

Deno.test("onError answers an unknown error, or a TroupeError of no mapped code, with a bare 500", async () => {
  for (
    const err of [new Error("secret internals"), new TroupeError("LEASE_LOST", "fence 7 at db")]
  ) {
    const { res, text } = await answerTo(err);
    assert.equal(res.status, 500);
    const body = JSON.parse(text);
    assert.equal(body.error.code, "INTERNAL");
    assert.equal(body.error.message, "internal error");
    assert.ok(!text.includes("secret") && !text.includes("fence"), text);
  }
});
