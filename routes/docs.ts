/**
 * `GET /api/openapi.json`: the OpenAPI 3.1 document generated from the routes' zod schemas
 * (routes/openapi.ts), and `GET /api/docs`: Swagger UI over it, its scripts and styles served
 * from the npm package `swagger-ui-dist` (no other host). All public, like health.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import absolutePath from "swagger-ui-dist/absolute-path.js";
import { declare } from "./openapi.ts";
import type { AppEnv } from "./env.ts";

/** The files of `swagger-ui-dist` the page loads, with their content types. */
const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

/** Starts Swagger UI on the document (a file, so a strict CSP can forbid inline scripts). */
const INIT_JS = `window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).pathname,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
};
`;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Troupe API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-ui-standalone-preset.js"></script>
<script src="docs/init.js"></script></body></html>
`;

/** Bytes of the assets, read once on first use. */
const cached = new Map<string, Uint8Array>();
async function asset(name: string): Promise<Uint8Array> {
  let bytes = cached.get(name);
  if (!bytes) {
    bytes = await Deno.readFile(`${absolutePath()}/${name}`);
    cached.set(name, bytes);
  }
  return bytes;
}

/** `document` builds the OpenAPI document of every route (loading the groups not yet loaded). */
export function docsRoutes(document: () => unknown | Promise<unknown>): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  const tags = ["docs"];
  declare(app, {
    method: "get",
    path: "/openapi.json",
    tags,
    public: true,
    summary: "This document (OpenAPI 3.1)",
    responses: { 200: { description: "The document", type: "application/json" } },
  }, async function openApiDocument(c) {
    return c.json(await document());
  });
  declare(app, {
    method: "get",
    path: "/docs",
    tags,
    public: true,
    summary: "Swagger UI over this document",
    responses: { 200: { description: "The page", type: "text/html" } },
  }, function docsPage(c) {
    return c.html(PAGE);
  });
  // The page's files: not API operations, so not in the document.
  app.get("/docs/init.js", function docsInit(c) {
    c.header("content-type", "text/javascript; charset=utf-8");
    c.header("cache-control", "public, max-age=3600");
    return c.body(INIT_JS);
  });
  app.get("/docs/:file{[a-z0-9.-]+}", async function docsAsset(c) {
    const name = c.req.param("file");
    const type = ASSETS[name];
    if (!type) return c.notFound();
    c.header("content-type", type);
    c.header("cache-control", "public, max-age=86400");
    return c.body(await asset(name) as Uint8Array<ArrayBuffer>);
  });
  return app;
}
