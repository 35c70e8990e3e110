import assert from "node:assert/strict";
import {
  CancelledError,
  ConflictError,
  IdempotencyKeyReusedError,
  InputError,
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
import { statusOf } from "./errors.ts";

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
