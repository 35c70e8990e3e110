/** The floor of bench/cold_start.ts: a bare Hono app, nothing else. */
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("ok"));
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} }, app.fetch);
