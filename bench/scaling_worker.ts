/**
 * One instance for bench/scaling.ts: a runtime with the no-op actor on the table queue of the
 * PostgreSQL database given as the first argument. Prints `ready` once it claims, stops on
 * SIGTERM and then prints its CPU ms (user + system) as JSON.
 */
import process from "node:process";
import { z } from "zod";
import { defineActor, jsonLogger, Runtime, TableQueueTransport } from "@troupe/runtime";
import { openPostgres } from "@troupe/runtime/postgres";

const url = Deno.args[0]!;
const keys = Number(Deno.args[1] ?? 256);
const db = openPostgres(url, { max: 10 });
const runtime = new Runtime({
  db,
  actors: [
    defineActor({
      name: "bench.noop",
      input: z.object({ i: z.number().int() }),
      key: (x) => `bench:${x.i % keys}`,
      handler: () => {},
    }),
  ],
  transport: new TableQueueTransport(db),
  logger: jsonLogger("warn"),
});
await runtime.start();
const cpu0 = process.cpuUsage();
console.log("ready");
await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", resolve));
const cpu = process.cpuUsage(cpu0);
await runtime.stop();
await db.close();
console.log(JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000 }));
Deno.exit(0);
