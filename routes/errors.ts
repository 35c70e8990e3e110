/**
 * One mapping from errors to the JSON error body `{ error: { code, message, details? } }` and
 * its status: the errors carry a stable `code`, {@link ERROR_STATUS} gives its status here.
 * A database that cannot be reached and a full disk are 503s with `Retry-After` (the request
 * may succeed later, unchanged); a value the database found out of its range is a 400. An error
 * whose code maps to a 5xx (an upstream down: 502, a timeout: 504) is answered with that status,
 * its code and message and the request id, no details. Unknown errors (a code not mapped
 * included) become a 500 with the request id and nothing internal.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "@troupe/runtime";
import { TroupeError } from "@troupe/runtime/errors";
import { errorStatus, RUNTIME_ERROR_STATUS } from "@troupe/runtime/status";
import { storageFailure } from "../db/errors.ts";
import type { AppEnv } from "./env.ts";

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown; requestId?: string };
}

/** Builds an error response. */
export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details?: unknown,
): Response {
  const body: ErrorBody = { error: { code, message } };
  if (details !== undefined) body.error.details = details;
  return c.json(body, status);
}

const HTTP_CODES: Record<number, string> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  408: "REQUEST_TIMEOUT",
  409: "CONFLICT",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  429: "RATE_LIMITED",
  503: "UNAVAILABLE",
};

/**
 * The status of each error code: the runtime's, and the app's own. Bad input met while a job
 * runs (`InputError`, whatever its code) and non-retryable failures are 422; a code not here is
 * a 500.
 */
export const ERROR_STATUS: Readonly<Record<string, number>> = {
  ...RUNTIME_ERROR_STATUS,
  INVALID_JSON: 400,
  BAD_GZIP: 400,
  FORBIDDEN: 403,
  NOT_EMBEDDED: 409,
  UNSUPPORTED_MEDIA_TYPE: 415,
  BAD_XLSX: 422,
  SHEET_NOT_FOUND: 422,
  TOO_MANY_COLUMNS: 422,
  UPLOAD_LOST: 503,
  UNAVAILABLE: 503,
  REPORT_FAILED: 409,
  STATEMENT_FAILED: 409,
  STATEMENT_REPLACED: 410,
  UPSTREAM_RATE_LIMITED: 503,
  UPSTREAM_UNAVAILABLE: 502,
  TOO_MANY_STREAMS: 429,
  SECRET_KEYS_MISSING: 409,
  DIRECT_UPLOADS_UNAVAILABLE: 409,
  UPLOAD_NOT_RECEIVED: 409,
  UPLOAD_SIZE_MISMATCH: 422,
  UPLOAD_USED: 409,
  UPLOAD_EXPIRED: 410,
  CALLBACK_URL_NOT_ALLOWED: 400,
  CALLBACKS_UNAVAILABLE: 409,
};

/** The HTTP status that answers `err` ({@link ERROR_STATUS}; 500 for an unknown error). */
export function statusOf(err: unknown): number {
  return errorStatus(err, ERROR_STATUS);
}

/** Seconds a client is asked to wait before trying again, by cause. */
export const RETRY_AFTER_SECONDS = { database: 5, storage: 30 } as const;

/** `app.onError` handler. */
export function onError(logger: Logger) {
  return function handleError(err: Error, c: Context<AppEnv>): Response {
    const status = statusOf(err);
    if (err instanceof TroupeError && status < 500) {
      return errorResponse(
        c,
        status as ContentfulStatusCode,
        err.code,
        err.message,
        err.details,
      );
    }
    if (err instanceof HTTPException && err.status < 500) {
      return errorResponse(
        c,
        err.status,
        HTTP_CODES[err.status] ?? "HTTP_ERROR",
        err.message || "request rejected",
      );
    }
    const requestId = c.get("requestId");
    const failure = storageFailure(err);
    if (failure) {
      logger.warn("storage failure", {
        requestId,
        method: c.req.method,
        path: c.req.path,
        failure,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      });
      if (failure === "bad_value") {
        // Every value is bound: the database refused one of the caller's values as out of its
        // range (a check here missed it). Nothing of the database's message goes out.
        return errorResponse(
          c,
          400,
          "VALIDATION_FAILED",
          "a parameter is outside the range the database accepts",
        );
      }
      const full = failure === "storage_full";
      c.header(
        "Retry-After",
        String(full ? RETRY_AFTER_SECONDS.storage : RETRY_AFTER_SECONDS.database),
      );
      return c.json({
        error: {
          code: full ? "STORAGE_FULL" : "DATABASE_UNAVAILABLE",
          message: full
            ? "the server has no storage space left; try again later"
            : "the database is unavailable; try again later",
          requestId,
        },
      }, 503);
    }
    if (err instanceof TroupeError && ERROR_STATUS[err.code] !== undefined) {
      // A server-side failure with a code of its own (an upstream down, a timeout): its status,
      // code and message, never its details or stack.
      logger.warn("request failed", {
        requestId,
        method: c.req.method,
        path: c.req.path,
        status,
        code: err.code,
        error: err.message,
      });
      if (status === 503) c.header("Retry-After", String(RETRY_AFTER_SECONDS.database));
      return c.json(
        { error: { code: err.code, message: err.message, requestId } },
        status as ContentfulStatusCode,
      );
    }
    logger.error("unhandled error", {
      requestId,
      method: c.req.method,
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    return c.json({ error: { code: "INTERNAL", message: "internal error", requestId } }, 500);
  };
}
