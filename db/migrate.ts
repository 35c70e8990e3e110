/**
 * Applies the drizzle-kit migrations under `db/migrations/` in journal order.
 *
 * Idempotent and safe to run from several instances at once: a transaction-scoped advisory lock
 * serialises them and `troupe_migrations` records what was applied.
 */
import type { SqlDatabase } from "../actors/runtime/ports.ts";

const MIGRATIONS = new URL("./migrations/", import.meta.url);
const LOCK_ID = 7_316_001;

interface Journal {
  entries: { idx: number; tag: string }[];
}

/** Returns the tags applied by this call (empty when the database was up to date). */
export async function migrate(db: SqlDatabase): Promise<string[]> {
  const journal = JSON.parse(
    await Deno.readTextFile(new URL("meta/_journal.json", MIGRATIONS)),
  ) as Journal;
  const entries = [...journal.entries].sort((a, b) => a.idx - b.idx);
  const applied = await db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(${LOCK_ID})`);
    await tx.query(`CREATE TABLE IF NOT EXISTS troupe_migrations (
      tag text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await tx.query<{ tag: string }>("SELECT tag FROM troupe_migrations")).map((r) => r.tag),
    );
    const tags: string[] = [];
    for (const { tag } of entries) {
      if (done.has(tag)) continue;
      const text = await Deno.readTextFile(new URL(`${tag}.sql`, MIGRATIONS));
      for (const statement of text.split("--> statement-breakpoint")) {
        if (statement.trim()) await tx.query(statement);
      }
      await tx.query("INSERT INTO troupe_migrations (tag) VALUES ($1)", [tag]);
      tags.push(tag);
    }
    return tags;
  });
  // Fresh statistics so the first plans use the queue's indexes.
  if (applied.length > 0) await db.query("ANALYZE");
  return applied;
}
