import { Hono } from "hono";
import { z } from "zod";
import { defineActor, Runtime, type SqlDatabase, TableQueueTransport } from "@troupe/runtime";
import { jobRoutes } from "@troupe/runtime/hono";
import { openPglite } from "@troupe/runtime/pglite";
export const greet = defineActor({
  name: "greet",
  input: z.object({ name: z.string().min(1) }),
  handler: (input) => ({ greeting: `hello ${input.name}` }),
});

export async function start(db: SqlDatabase): Promise<{ app: Hono; runtime: Runtime }> {
  const runtime = new Runtime({ db, actors: [greet], transport: new TableQueueTransport(db) });
  await runtime.start();
  return { app: new Hono().route("/api", jobRoutes(runtime)), runtime };
}
if (import.meta.main) {
  const db = await openPglite(".data/pglite"); // with the troupe_* tables (below)
  Deno.serve((await start(db)).app.fetch);
}
