/** Embedded PostgreSQL (PGlite, WASM) adapter: one process, a directory on disk or memory. */
import { PGlite } from "@electric-sql/pglite";
import type { SqlDatabase, SqlExecutor } from "../actors/runtime/ports.ts";

/** Opens PGlite at `dataDir` (a directory), or in memory when it is undefined. */
export async function openPglite(dataDir?: string): Promise<SqlDatabase> {
  if (dataDir) await Deno.mkdir(dataDir, { recursive: true });
  const pg = await PGlite.create(dataDir ? { dataDir } : {});
  // PGlite runs one query at a time; transactions are exclusive by construction.
  const exec: SqlExecutor = {
    async query<T>(text: string, params?: readonly unknown[]) {
      const res = await pg.query<T>(text, params ? [...params] : undefined);
      return res.rows;
    },
  };
  return {
    dialect: "pglite",
    shared: false,
    autovacuum: false,
    query: exec.query,
    transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      return pg.transaction((tx) =>
        fn({
          async query<R>(text: string, params?: readonly unknown[]) {
            const res = await tx.query<R>(text, params ? [...params] : undefined);
            return res.rows;
          },
        })
      );
    },
    async listen(channel, onPayload) {
      const unsub = await pg.listen(channel, onPayload);
      return async () => await unsub();
    },
    async close() {
      if (!pg.closed) await pg.close();
    },
  };
}
