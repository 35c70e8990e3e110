/**
 * The storage floor of uploads on the embedded default (bench/uploads.ts runs it in its own
 * process): a Deno HTTP server that streams each body into a file under DIR with FsBlobStore's
 * durable steps, by the store's own functions (db/blobs/fs.ts), and nothing else (no hashing, no
 * database), and answers 202 with the upload route's shape. Each body goes into `DIR/tmp/<id>`
 * (opened `createNew`) in writes of 1 MiB, one written while the body fills the next; then the
 * file is `sync`ed and closed, the target looked up (`stat`, as the store does to say whether it
 * made the blob) and the file renamed to `DIR/<ab>/<id>`, its directory made when the rename finds
 * it absent (the id's first two characters, as a blob's path takes its SHA-256's). The answer's
 * `datasetId` is the id, so the bench finds each stored file.
 *
 *   deno run -A bench/uploads_fs_floor.ts PORT DIR
 */
import { join } from "node:path";
import { exists, renameInto, writeGathered } from "../db/blobs/fs.ts";

const port = Number(Deno.args[0]);
const dir = Deno.args[1]!;
const tmpDir = join(dir, "tmp");
await Deno.mkdir(tmpDir, { recursive: true });

async function store(body: ReadableStream<Uint8Array>, id: string): Promise<void> {
  const tmp = join(tmpDir, id);
  const file = await Deno.open(tmp, { write: true, createNew: true });
  let closed = false;
  try {
    await writeGathered(file, body);
    await file.sync();
    file.close();
    closed = true;
    const target = join(dir, id.slice(0, 2), id);
    await exists(target);
    await renameInto(tmp, target);
  } catch (err) {
    if (!closed) file.close();
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
  if (!req.body) return Response.json({ ok: true });
  const id = crypto.randomUUID();
  await store(req.body, id);
  return Response.json({ datasetId: id, jobId: id, status: "uploaded" }, { status: 202 });
});
