/**
 * The storage floor of uploads on PostgreSQL (bench/uploads.ts runs it in its own process): a
 * Deno HTTP server that streams each body into a table of the blob parts' layout
 * (`bench_floor_blob_parts`: `troupe_blob_parts`'s columns, key and index, its bytea stored
 * uncompressed) and answers 202 with the upload route's shape. The simplest efficient way:
 * node-postgres, a pool of `DATABASE_POOL_SIZE` connections (Troupe's default, 10, unless set),
 * parts of 1 MiB sent as binary parameters; an upload of one part is one `INSERT` (its own
 * transaction), a longer one takes a connection at its first full part and writes its parts in
 * one transaction, each part's `INSERT` sent while the next part arrives. Each upload's
 * transaction commits as PostgreSQL's default does (waiting for its flush to disk).
 *
 * `GET /floor/stored` answers the uploads and bytes in the table (the bench checks them).
 *
 *   FLOOR_DATABASE_URL=postgres://... deno run -A bench/uploads_pg_floor.ts PORT
 */
import pg from "pg";
import { Buffer } from "node:buffer";

const PART_SIZE = 1 << 20;
const port = Deno.args[0];
const url = Deno.env.get("FLOOR_DATABASE_URL");
const pool = new pg.Pool({
  connectionString: url,
  max: Number(Deno.env.get("DATABASE_POOL_SIZE") ?? 10),
});
await pool.query(`CREATE TABLE IF NOT EXISTS bench_floor_blob_parts (
  upload_id text NOT NULL,
  part integer NOT NULL,
  data bytea NOT NULL,
  created_at timestamp with time zone DEFAULT now() NOT NULL,
  PRIMARY KEY (upload_id, part))`);
await pool.query("ALTER TABLE bench_floor_blob_parts ALTER COLUMN data SET STORAGE EXTERNAL");
await pool.query(
  "CREATE INDEX IF NOT EXISTS bench_floor_blob_parts_created_idx ON bench_floor_blob_parts (created_at)",
);

const INSERT = "INSERT INTO bench_floor_blob_parts (upload_id, part, data) VALUES ($1, $2, $3)";

async function store(body: ReadableStream<Uint8Array>, id: string): Promise<void> {
  let part = Buffer.allocUnsafe(PART_SIZE);
  let filled = 0;
  let n = 0;
  let client: pg.PoolClient | null = null;
  let pending: Promise<unknown> | null = null;
  const send = async (bytes: Buffer) => {
    if (!client) {
      client = await pool.connect();
      await client.query("BEGIN");
    }
    await pending;
    pending = client.query(INSERT, [id, n++, bytes]);
    pending.catch(() => {}); // awaited before the next part, or at the end
  };
  try {
    for await (const chunk of body) {
      for (let off = 0; off < chunk.byteLength;) {
        const k = Math.min(PART_SIZE - filled, chunk.byteLength - off);
        part.set(chunk.subarray(off, off + k), filled);
        filled += k;
        off += k;
        if (filled === PART_SIZE) {
          await send(part);
          part = Buffer.allocUnsafe(PART_SIZE);
          filled = 0;
        }
      }
    }
    if (!client) {
      await pool.query(INSERT, [id, 0, part.subarray(0, filled)]);
      return;
    }
    if (filled > 0) await send(part.subarray(0, filled));
    await pending;
    await (client as pg.PoolClient).query("COMMIT");
  } catch (err) {
    await (pending as Promise<unknown> | null)?.catch(() => {});
    await (client as pg.PoolClient | null)?.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    (client as pg.PoolClient | null)?.release();
  }
}

Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen() {} }, async (req) => {
  if (req.method === "GET" && new URL(req.url).pathname === "/floor/stored") {
    const { rows } = await pool.query(
      `SELECT count(DISTINCT upload_id)::int AS uploads, coalesce(sum(length(data)), 0)::float8 AS bytes
       FROM bench_floor_blob_parts`,
    );
    return Response.json(rows[0]);
  }
  if (!req.body) return Response.json({ ok: true });
  const id = crypto.randomUUID();
  await store(req.body, id);
  return Response.json({ datasetId: id, jobId: id, status: "uploaded" }, { status: 202 });
});
