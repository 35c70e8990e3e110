/** zod at the HTTP edge: query strings, path ids and JSON bodies. */
import type { Context } from "hono";
import { z } from "zod";
import { NotFoundError, TroupeError, ValidationError } from "@troupe/runtime";

function issues(error: z.ZodError) {
  return error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
}

/**
 * Parses the query string; a bad parameter is a 400 naming it. A NUL character is refused in
 * any parameter: no PostgreSQL text can hold one.
 */
export function parseQuery<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const query = c.req.query();
  const nul = Object.keys(query).filter((k) => query[k]!.includes("\u0000"));
  if (nul.length) {
    throw new ValidationError(
      `invalid query parameter: ${nul.join(", ")}`,
      nul.map((path) => ({ path, message: "holds a NUL character" })),
    );
  }
  const parsed = schema.safeParse(query);
  if (!parsed.success) {
    // An unknown parameter (a strict schema) is named by its key, not by an empty path.
    const names = [
      ...new Set(
        parsed.error.issues.flatMap((i) =>
          i.code === "unrecognized_keys" ? i.keys : [String(i.path[0])]
        ),
      ),
    ];
    throw new ValidationError(`invalid query parameter: ${names.join(", ")}`, issues(parsed.error));
  }
  return parsed.data;
}

const ID = /^[A-Za-z0-9-]{1,64}$/;

/** A path id of the wrong shape cannot exist: 404 without touching the database. */
export function pathId(c: Context, what: string, name = "id"): string {
  const id = c.req.param(name) ?? "";
  if (!ID.test(id)) throw new NotFoundError(what, id.slice(0, 80));
  return id;
}

/** Reads a JSON object body (415 for another type, 400 when it does not parse). */
export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new TroupeError(
      "UNSUPPORTED_MEDIA_TYPE",
      "send a JSON body (content-type: application/json)",
    );
  }
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new TroupeError("INVALID_JSON", "the body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError("the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** Parses a body object with `schema`. */
export function parseBody<T extends z.ZodType>(body: unknown, schema: T): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ValidationError("invalid request body", issues(parsed.error));
  return parsed.data;
}

/**
 * Throws a 400 when a JSON value holds text PostgreSQL cannot store (in `jsonb` or `text`): a
 * NUL character, or half of a surrogate pair. `path` names the value in the details.
 */
export function assertStorableJson(value: unknown, path: string): void {
  const stack: [unknown, string][] = [[value, path]];
  for (let seen = 0; stack.length && seen < 100_000; seen++) {
    const [v, at] = stack.pop()!;
    if (typeof v === "string") {
      if (v.includes("\u0000") || !v.isWellFormed()) {
        throw new ValidationError("invalid request body", [
          { path: at, message: "holds a NUL character or an unpaired surrogate" },
        ]);
      }
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push([item, `${at}.${i}`]));
    } else if (typeof v === "object" && v !== null) {
      for (const [k, item] of Object.entries(v)) {
        stack.push([k, `${at}.${k}`], [item, `${at}.${k}`]);
      }
    }
  }
}
