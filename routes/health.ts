/** `GET /api/health`: database reachability and queue depth; 503 when the database is down. */
import { Hono } from "hono";
import { toErrorRecord } from "../actors/runtime/errors.ts";
import type { Runtime } from "../actors/runtime/runtime.ts";

export function healthRoutes(runtime: Runtime): Hono {
  const app = new Hono();
  app.get("/health", async function health(c) {
    try {
      const queue = await runtime.health();
      return c.json({
        status: "ok",
        database: { status: "ok", dialect: runtime.db.dialect },
        queue,
        transport: runtime.transport.name,
      });
    } catch (err) {
      const { code } = toErrorRecord(err);
      return c.json({
        status: "unavailable",
        database: { status: "unreachable", dialect: runtime.db.dialect },
        error: {
          code: code === "DB_TIMEOUT" ? code : "DB_UNREACHABLE",
          message: "database did not answer",
        },
      }, 503);
    }
  });
  return app;
}
