/**
 * One mapping from errors to the JSON error body `{ error: { code, message, details? } }`.
 * A database that cannot be reached and a full disk are 503s with `Retry-After` (the request
 * may succeed later, unchanged); a value the database found out of its range is a 400. Unknown
 * errors become a 500 with the request id and nothing internal.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { TroupeError } from "../actors/runtime/errors.ts";
import type { Logger } from "../actors/runtime/ports.ts";
import { storageFailure } from "../db/errors.ts";

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

/** Seconds a client is asked to wait before trying again, by cause. */
export const RETRY_AFTER_SECONDS = { database: 5, storage: 30 } as const;

/** `app.onError` handler. */
export function onError(logger: Logger) {
  return function handleError(err: Error, c: Context): Response {
    if (err instanceof TroupeError && err.status < 500) {
      return errorResponse(
        c,
        err.status as ContentfulStatusCode,
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
    const requestId: string | undefined = c.get("requestId");
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
    logger.error("unhandled error", {
      requestId,
      method: c.req.method,
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    if (err instanceof TroupeError && err.status === 503) {
      c.header("Retry-After", String(RETRY_AFTER_SECONDS.database));
      return c.json({ error: { code: err.code, message: err.message, requestId } }, 503);
    }
    return c.json({ error: { code: "INTERNAL", message: "internal error", requestId } }, 500);
  };
}
