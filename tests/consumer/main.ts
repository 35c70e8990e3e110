import { Hono } from "hono";
import { z } from "zod";
import { defineActor, Runtime, TableQueueTransport } from "@troupe/runtime";
import { migrateRuntime, type SqlDatabase } from "@troupe/runtime";
import { jobRoutes } from "@troupe/runtime/hono";
import { openPglite } from "@troupe/runtime/pglite";
export const greet = defineActor({
  name: "greet",
  input: z.object({ name: z.string().min(1) }),
  handler: (input) => ({ greeting: `hello ${input.name}` }),
});

export async function start(db: SqlDatabase): Promise<{ app: Hono; runtime: Runtime }> {
  await migrateRuntime(db); // its tables, in the schema "public" (see Migrations below)
  const runtime = new Runtime({ db, actors: [greet], transport: new TableQueueTransport(db) });
  await runtime.start();
  return { app: new Hono().route("/api", jobRoutes(runtime)), runtime };
}
if (import.meta.main) Deno.serve((await start(await openPglite(".data/pglite"))).app.fetch);
