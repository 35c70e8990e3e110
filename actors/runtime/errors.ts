/**
 * Errors that tell the runtime and the HTTP layer what to do.
 *
 * `TroupeError` carries a stable `code`, `details` and a `cause`; the HTTP layer maps codes to
 * statuses (`errorStatus` in `@troupe/runtime/hono`). A handler that throws
 * `NonRetryableError` goes straight to the dead letters; one that throws `InputError` ends its job
 * `failed` with the error's code, with no retry and no dead letter; any other error is retried by
 * policy.
 */
export class TroupeError extends Error {
  /** Stable machine-readable code, e.g. `NOT_FOUND`. */
  readonly code: string;
  /** Extra data for the caller (validation issues, limits); undefined when none. */
  readonly details: unknown;

  /** An error with `code`, `cause` and `details`. */
  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "TroupeError";
    this.code = code;
    this.details = options.details;
  }
}

/** A failure that retrying cannot fix: the message goes to the dead letters at once. */
export class NonRetryableError extends TroupeError {
  /** A non-retryable failure; `code` defaults to `NON_RETRYABLE`. */
  constructor(
    message: string,
    options: { code?: string; cause?: unknown; details?: unknown } = {},
  ) {
    super(options.code ?? "NON_RETRYABLE", message, options);
    this.name = "NonRetryableError";
  }
}

/**
 * Bad input found while a job runs (a malformed, hostile or oversize file): the job ends `failed`
 * with this code at once, with no retry and no dead letter, since a replay would fail the same way.
 * The actor's `onDeadLetter` still hears of it, so a pipeline can end its parent.
 */
export class InputError extends TroupeError {
  /** Bad input met while running, with its `code`. */
  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: unknown } = {},
  ) {
    super(code, message, options);
    this.name = "InputError";
  }
}

/**
 * An idempotency key sent again with another request than the first one made with it (another
 * actor or input), since answering with the first job would hide that the second request
 * was never carried out.
 */
export class IdempotencyKeyReusedError extends TroupeError {
  /** The idempotency key sent again with another request. */
  constructor(key: string) {
    super(
      "IDEMPOTENCY_KEY_REUSED",
      "this idempotency key was used before with a different request",
      { details: { idempotencyKey: key } },
    );
    this.name = "IdempotencyKeyReusedError";
  }
}

/** Bad input from a caller, with the validation issues as details. */
export class ValidationError extends TroupeError {
  /** A validation failure; `details` holds the issues. */
  constructor(message: string, details?: unknown) {
    super("VALIDATION_FAILED", message, { details });
    this.name = "ValidationError";
  }
}

/** A resource that does not exist (or is another tenant's). */
export class NotFoundError extends TroupeError {
  /** `what` names the kind of resource, `id` the one asked for. */
  constructor(what: string, id: string) {
    super("NOT_FOUND", `${what} ${JSON.stringify(id)} was not found`);
    this.name = "NotFoundError";
  }
}

/** A request that conflicts with the current state. */
export class ConflictError extends TroupeError {
  /** The conflict, and optional details. */
  constructor(message: string, details?: unknown) {
    super("CONFLICT", message, { details });
    this.name = "ConflictError";
  }
}

/** A body or file over its size limit; nothing of it is kept. */
export class PayloadTooLargeError extends TroupeError {
  /** The limit in bytes, and what exceeded it. */
  constructor(limitBytes: number, what = "the upload") {
    super("PAYLOAD_TOO_LARGE", `${what} is larger than ${limitBytes} bytes`, {
      details: { limitBytes },
    });
    this.name = "PayloadTooLargeError";
  }
}

/** An upload whose body stopped arriving; nothing of it is kept. */
export class UploadStalledError extends TroupeError {
  /** How long the upload sent nothing, in ms. */
  constructor(idleMs: number) {
    super("UPLOAD_STALLED", `no bytes of the upload arrived for ${idleMs} ms`, {
      details: { idleMs },
    });
    this.name = "UploadStalledError";
  }
}

/**
 * An upload arriving slower than its minimum rate, or still arriving at its deadline;
 * nothing of it is kept.
 */
export class UploadTooSlowError extends TroupeError {
  /** The rate that was too slow, with its figures. */
  constructor(message: string, details: Record<string, unknown>) {
    super("UPLOAD_TOO_SLOW", message, { details });
    this.name = "UploadTooSlowError";
  }
}

/** Raised inside a handler's signal when its time limit passes. */
export class TimeoutError extends TroupeError {
  /** The time limit that passed, in ms. */
  constructor(ms: number) {
    super("TIMEOUT", `handler timed out after ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/** Raised inside a handler's signal when its job is cancelled. */
export class CancelledError extends TroupeError {
  constructor() {
    super("CANCELLED", "job was cancelled");
    this.name = "CancelledError";
  }
}

/**
 * "Run this message again at `at`, not a failure": the job goes back to the queue with that run
 * time and the attempt is given back (an upstream's `429` with `Retry-After`, a rate limit of
 * one's own). Its effects and sends are dropped, as with any attempt that did not succeed.
 */
export class RetryLaterError extends TroupeError {
  /** When to run again. */
  readonly at: Date;
  /** Run again at `at` (a `Date`, or ms from now). */
  constructor(at: Date | number, message = "asked to run again later", cause?: unknown) {
    const when = typeof at === "number" ? new Date(Date.now() + at) : at;
    super("RETRY_LATER", message, { cause, details: { at: when.toISOString() } });
    this.name = "RetryLaterError";
    this.at = when;
  }
}

/** Serializable form of an error, stored on jobs and dead letters. No stack traces leave here. */
export interface ErrorRecord {
  /** The error's code (its class name, or `ERROR`, for an error without one). */
  code: string;
  /** Its message. */
  message: string;
  /** Whether running the job again could help. */
  retryable: boolean;
  /** When it happened (ISO 8601). */
  at: string;
}

/**
 * The record of `err`. `retryable` says whether running the job again could help: not after bad
 * input, a non-retryable error or a cancel (the user asked for it to stop).
 */
export function toErrorRecord(err: unknown): ErrorRecord {
  const at = new Date().toISOString();
  if (err instanceof TroupeError) {
    return {
      code: err.code,
      message: err.message,
      retryable: !(
        err instanceof NonRetryableError || err instanceof InputError ||
        err instanceof CancelledError
      ),
      at,
    };
  }
  if (err instanceof Error) {
    return { code: err.name || "ERROR", message: err.message, retryable: true, at };
  }
  return { code: "ERROR", message: String(err), retryable: true, at };
}
