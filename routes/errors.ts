/**
 * One mapping from errors to the JSON error body `{ error: { code, message, details? } }`.
 * Unknown errors become a 500 with the request id and nothing internal.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { TroupeError } from "../actors/runtime/errors.ts";
import type { Logger } from "../actors/runtime/ports.ts";

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
    const requestId = c.get("requestId") as string | undefined;
    logger.error("unhandled error", {
      requestId,
      method: c.req.method,
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    if (err instanceof TroupeError && err.status === 503) {
      return c.json({ error: { code: err.code, message: err.message, requestId } }, 503);
    }
    return c.json({ error: { code: "INTERNAL", message: "internal error", requestId } }, 500);
  };
}
