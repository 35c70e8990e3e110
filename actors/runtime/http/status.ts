/**
 * The HTTP status of each error the runtime raises, kept at the HTTP edge: the errors carry a
 * stable `code`, and an app that adds codes of its own extends {@linkcode RUNTIME_ERROR_STATUS}.
 *
 * @module
 */
import { InputError, NonRetryableError, TroupeError } from "../errors.ts";

/** The status of each runtime error code; an error whose code is not here is a 500. */
export const RUNTIME_ERROR_STATUS: Readonly<Record<string, number>> = {
  VALIDATION_FAILED: 400,
  INVALID_INPUT: 400,
  NOT_FOUND: 404,
  UPLOAD_STALLED: 408,
  UPLOAD_TOO_SLOW: 408,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  CANCELLED: 409,
  PAYLOAD_TOO_LARGE: 413,
  DB_TIMEOUT: 503,
  RETRY_LATER: 503,
  TIMEOUT: 504,
};

/**
 * The status that answers `err`: 422 for bad input and non-retryable failures (whatever their
 * code), else `statuses[err.code]`, else 500 (also for anything that is not a
 * {@linkcode TroupeError}).
 */
export function errorStatus(
  err: unknown,
  statuses: Readonly<Record<string, number>> = RUNTIME_ERROR_STATUS,
): number {
  if (!(err instanceof TroupeError)) return 500;
  if (err instanceof InputError || err instanceof NonRetryableError) return 422;
  return statuses[err.code] ?? 500;
}
