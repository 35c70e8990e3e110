/**
 * Creates a PGlite data directory (initdb) and exits: `openPglite` runs this in a child
 * process the first time a directory is used, so initdb's ~640 MB WASM heap is never part of
 * the server process.
 *
 *   deno run -A actors/runtime/drivers/pglite_init.ts DIR
 */
import { PGlite } from "@electric-sql/pglite";

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: pglite_init.ts DIR");
  Deno.exit(2);
}
const pg = await PGlite.create({ dataDir: dir });
await pg.close();
