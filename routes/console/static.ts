/** The console's stylesheet and script, read once from routes/console/static/. */
import type { Context } from "hono";

const FILES: Record<string, string> = {
  "console.css": "text/css; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "favicon.svg": "image/svg+xml",
};

const cache = new Map<string, string>();

export async function staticAsset(c: Context, file: string): Promise<Response> {
  const type = FILES[file];
  if (!type) return c.text("not found", 404);
  let body = cache.get(file);
  if (body === undefined) {
    body = await Deno.readTextFile(new URL(`./static/${file}`, import.meta.url));
    cache.set(file, body);
  }
  c.header("Content-Type", type);
  c.header("Cache-Control", "public, max-age=300");
  c.header("X-Content-Type-Options", "nosniff");
  return c.body(body);
}
