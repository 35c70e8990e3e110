/**
 * Write probes for the health check: reads can go on for a long time after writes have
 * stopped (a full disk, a read-only database), so a service that only reads to check itself
 * says `ok` while every upload fails. Each probe writes for real, where a full disk shows:
 * a rolled-back write would not (PGlite and PostgreSQL write ahead into log segments allocated
 * earlier, and a rollback needs no new space).
 */
import type { SqlExecutor } from "@troupe/runtime";
import { join } from "node:path";

/** One check that something can still be written; rejects with the error when it cannot. */
export interface WriteProbe {
  /** What is written: `database`, `disk`. */
  readonly name: string;
  run(): Promise<void>;
}

/** Bytes the disk probe writes: one block, so the file system must allocate one. */
const PROBE_BYTES = 4096;

/**
 * Writes, syncs and removes a new file of one block in `dir` (the data directory): a file
 * system without a free block refuses it with ENOSPC. A new file each time, since rewriting a
 * file in place could reuse its own block on a full disk.
 */
export function diskWriteProbe(dir: string): WriteProbe {
  const bytes = new Uint8Array(PROBE_BYTES).fill(0x2e);
  return {
    name: "disk",
    async run() {
      const path = join(dir, `.health-${crypto.randomUUID()}`);
      let file: Deno.FsFile | null = null;
      try {
        await Deno.mkdir(dir, { recursive: true }); // before the first upload made it
        file = await Deno.open(path, { write: true, createNew: true });
        for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
        await file.sync();
      } finally {
        file?.close();
        await Deno.remove(path).catch(() => {});
      }
    },
  };
}

/**
 * Inserts and deletes a row, each committed: a database that cannot write (out of disk, read
 * only, in recovery) refuses one of them. The row is a webhook nonce that expires at once, so
 * one left behind by a failed delete is swept with the expired nonces.
 */
export function databaseWriteProbe(db: SqlExecutor): WriteProbe {
  return {
    name: "database",
    async run() {
      const jti = `health:${crypto.randomUUID()}`;
      await db.query(
        "INSERT INTO troupe_webhook_nonces (jti, expires_at) VALUES ($1, now())",
        [jti],
      );
      await db.query("DELETE FROM troupe_webhook_nonces WHERE jti = $1", [jti]);
    },
  };
}
