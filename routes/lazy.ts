/**
 * Route groups loaded on their first request: the app mounts a small handler on the paths of a
 * group (its first segments, e.g. `/datasets` and `/datasets/*`), which imports and builds the
 * group once, then runs each request through it. A start answers its first request without
 * evaluating the modules (zod schemas, workload code) of the groups that request does not use.
 *
 * The group runs in a Hono app of its own, as if mounted where the handler is:
 * - it sees the variables the app's middleware set (request id, client IP, principal) and the
 *   request as that middleware left it (`c.req.raw`: the body's guards);
 * - its answers get the headers the app's middleware set before it, as a route of the app does;
 * - a request none of its routes matches (or that calls `c.notFound()`) goes on to the app's
 *   next handlers, as it would have passed by the group's routes; errors get the app's handler;
 * - its route template is what {@link routeTemplate} gives the app's middleware (metrics,
 *   tracing), not the handler's pattern.
 */
import { type Context, type ErrorHandler, Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "./env.ts";

/** The app's context of each request handed to a group, by the request the group gets. */
const PARENTS = new WeakMap<Request, Context<AppEnv>>();
/** The group's route template of a request it answered, by the app's context. */
const TEMPLATES = new WeakMap<Context, string>();
/** Answers of a group that matched no route: the app's next handlers answer instead. */
const UNMATCHED = new WeakSet<Response>();

/** The route template that answered `c`: a lazy group's, else the app's (`c.req.routePath`). */
export function routeTemplate(c: Context): string {
  return TEMPLATES.get(c) ?? c.req.routePath;
}

/** A route of an app: its method (`ALL` for middleware) and path. */
export interface RouteEntry {
  method: string;
  path: string;
}

/** A group mounted by {@link lazyRoutes}: what the app routes, and the group once built. */
export interface LazyRoutes {
  /** The patterns the handler is mounted on (each prefix, and each prefix with `/*`). */
  patterns: string[];
  handler: MiddlewareHandler<AppEnv>;
  /** Loads and builds the group (once); what the OpenAPI document mounts. */
  // deno-lint-ignore no-explicit-any
  load(): Promise<Hono<any, any, any>>;
  /** The group's routes (loaded), as the app serves them: under each of the mounts. */
  routes(): Promise<RouteEntry[]>;
}

/**
 * The handler of a group whose routes all lie under `prefixes` (`/x`: the path `/x` and those
 * under `/x/`), mounted at each of `mounts` (the prefixes the app mounts the handler under,
 * e.g. `/api/v1` and `/api`; `""` for the app's root). `build` is called once, on the first
 * request (or {@link LazyRoutes.load}); a group with a route (or middleware) outside its
 * prefixes fails to load, naming it: the app would never route that path to it.
 * `middleware` runs in the group's app before its routes (e.g. the aliases' deprecation
 * headers, which look at the routes that matched).
 */
export function lazyRoutes(
  prefixes: readonly string[],
  mounts: readonly string[],
  // deno-lint-ignore no-explicit-any
  build: () => Promise<Hono<any, any, any>>,
  onError: ErrorHandler<AppEnv>,
  middleware: readonly (readonly [path: string, MiddlewareHandler<AppEnv>])[] = [],
): LazyRoutes {
  // deno-lint-ignore no-explicit-any
  let group: Promise<Hono<any, any, any>> | null = null;
  let app: Promise<Hono<AppEnv>> | null = null;
  const covered = (path: string) =>
    prefixes.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
  const load = () =>
    group ??= build().then((routes) => {
      const outside = routes.routes.filter((r) => !covered(r.path));
      if (outside.length > 0) {
        throw new Error(
          `a lazy route group has routes outside ${prefixes.join(", ")}: ${
            outside.map((r) => `${r.method} ${r.path}`).join(", ")
          }`,
        );
      }
      return routes;
    });
  const served = () =>
    app ??= load().then((routes) => {
      const inner = new Hono<AppEnv>();
      inner.use("*", async function fromTheApp(c, next) {
        const parent = PARENTS.get(c.req.raw);
        if (parent) {
          for (const [name, value] of Object.entries(parent.var)) {
            c.set(name as "requestId", value as string);
          }
        }
        await next();
        if (parent && !UNMATCHED.has(c.res)) TEMPLATES.set(parent, c.req.routePath);
      });
      for (const [path, handler] of middleware) inner.use(path, handler);
      for (const at of mounts) inner.route(at || "/", routes);
      inner.notFound(() => {
        const res = new Response(null, { status: 404 });
        UNMATCHED.add(res);
        return res;
      });
      inner.onError(onError);
      return inner;
    });
  return {
    patterns: prefixes.flatMap((p) => [p, `${p}/*`]),
    load,
    async routes() {
      // The group's routes, under each mount, after the middleware the group's app adds.
      return (await served()).routes.slice(1 + middleware.length)
        .map(({ method, path }) => ({ method, path }));
    },
    async handler(c, next) {
      const inner = await served();
      // The app answers `HEAD` with its `GET` routes, the body left out: the group does the same.
      const req = c.req.raw.method === "HEAD"
        ? new Request(c.req.raw, { method: "GET" })
        : c.req.raw;
      PARENTS.set(req, c);
      const res = await inner.fetch(req, c.env);
      if (UNMATCHED.has(res)) return await next();
      // The headers the app's middleware set before this handler join the group's answer.
      void c.res;
      return res;
    },
  };
}
