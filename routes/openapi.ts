/**
 * Routes declared once for both Hono and the OpenAPI document (`@hono/zod-openapi`): `declare()`
 * registers a route's zod schemas (path, query, JSON body, responses) in the app's OpenAPI
 * registry and mounts its handler. The handler validates with the same schema objects through
 * `parseQuery`/`parseBody` (routes/validate.ts), so the document and the checks cannot drift and
 * the error bodies stay ours. Upload bodies are declared by content type only: they stream, and
 * nothing buffers them to validate.
 */
import { OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context, Env, Handler } from "hono";

/** The error body of every 4xx and 5xx answer. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string().openapi({ example: "VALIDATION_FAILED" }),
    message: z.string(),
    details: z.unknown().optional(),
    requestId: z.string().optional().openapi({
      description: "Set on 5xx answers, to find the request in the logs",
    }),
  }),
}).openapi("Error");

/** A page of a keyset-paginated list. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

/** Any JSON object (a view whose fields are documented in its summary). */
export const JsonObject = z.record(z.string(), z.unknown());

type Method = "get" | "post" | "put" | "patch" | "delete";

/** One answer: a JSON schema, or a content type (a stream, a file) with no schema. */
export type Answer =
  | { description: string; schema?: z.ZodType; type?: undefined }
  | { description: string; type: string; schema?: undefined };

export interface RouteDoc {
  method: Method;
  /** Hono's form: `/jobs/:id`. */
  path: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** No API key needed (health, the docs). @default false */
  public?: boolean;
  query?: z.ZodObject;
  /** A JSON body, validated by the handler with this schema. */
  body?: z.ZodType;
  /** Bodies declared by content type and not parsed by a validator (uploads). */
  rawBody?: { description: string; types: readonly string[] };
  /** Header parameters. */
  headers?: z.ZodObject;
  responses: Record<number, Answer>;
}

const PATH_PARAM = /:([A-Za-z_][A-Za-z0-9_]*)/g;

function content(answer: Answer) {
  if (answer.type) return { [answer.type]: { schema: z.any() } };
  if (answer.schema) return { "application/json": { schema: answer.schema } };
  return undefined;
}

/** The OpenAPI route config of `doc` (exported for the document test). */
export function routeConfig(doc: RouteDoc): RouteConfig {
  const names = [...doc.path.matchAll(PATH_PARAM)].map((m) => m[1]!);
  const params = names.length
    ? z.object(Object.fromEntries(names.map((n) => [n, z.string().max(64)])))
    : undefined;
  const responses: RouteConfig["responses"] = {};
  for (const [status, answer] of Object.entries(doc.responses)) {
    const body = content(answer);
    responses[status] = { description: answer.description, ...(body ? { content: body } : {}) };
  }
  responses["4XX"] = {
    description:
      "Refused: bad input, no or wrong key, not found, conflict, too large, rate limited",
    content: { "application/json": { schema: ErrorBody } },
  };
  responses["5XX"] = {
    description: "The server failed, or the database or storage is unavailable (with Retry-After)",
    content: { "application/json": { schema: ErrorBody } },
  };
  const request: NonNullable<RouteConfig["request"]> = {};
  if (params) request.params = params;
  if (doc.query) request.query = doc.query;
  if (doc.headers) request.headers = doc.headers;
  if (doc.body) {
    request.body = { required: true, content: { "application/json": { schema: doc.body } } };
  } else if (doc.rawBody) {
    request.body = {
      required: true,
      description: doc.rawBody.description,
      content: Object.fromEntries(doc.rawBody.types.map((t) => [t, { schema: z.any() }])),
    };
  }
  return {
    method: doc.method,
    path: doc.path.replaceAll(PATH_PARAM, "{$1}"),
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    ...(doc.tags ? { tags: doc.tags } : {}),
    ...(doc.public ? { security: [] } : {}),
    request,
    responses,
  };
}

/** Registers `doc` in `app`'s OpenAPI registry and mounts `handler` on its method and path. */
export function declare<E extends Env, P extends string>(
  app: OpenAPIHono<E>,
  doc: RouteDoc & { path: P },
  handler: Handler<E, P>,
): void {
  app.openAPIRegistry.registerPath(routeConfig(doc));
  app.on(doc.method.toUpperCase(), doc.path, handler);
}

/** The prefix the request came by: `/api/v1`, or the deprecated `/api`. */
export function apiBase(c: Context): "/api/v1" | "/api" {
  return c.req.path.startsWith("/api/v1/") ? "/api/v1" : "/api";
}
