/**
 * The storage floor of uploads on the embedded default (bench/uploads.ts runs it in its own
 * process): a Deno HTTP server that streams each body into a file under DIR with FsBlobStore's
 * durable steps (db/blobs/fs.ts) and nothing else (no hashing, no database), and answers 202 with
 * the upload route's shape. Each body goes into `DIR/tmp/<id>` (opened `createNew`) in writes of
 * 1 MiB, one written while the body fills the next; then the file is `sync`ed and closed, the target
 * looked up (`stat`, as the store does to say whether it made the blob) and the file renamed to
 * `DIR/<ab>/<id>`, its directory `DIR/<ab>` made when the rename finds it absent (the id's first two
 * characters, as a blob's path takes its SHA-256's). The answer's `datasetId` is the id, so the
 * bench finds each stored file.
 *
 *   deno run -A bench/uploads_fs_floor.ts PORT DIR
 */
import { join } from "node:path";

const WRITE_BYTES = 1024 * 1024;
const port = Number(Deno.args[0]);
const dir = Deno.args[1]!;
const tmpDir = join(dir, "tmp");
await Deno.mkdir(tmpDir, { recursive: true });

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.byteLength;) off += await file.write(bytes.subarray(off));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function store(body: ReadableStream<Uint8Array>, id: string): Promise<void> {
  const tmp = join(tmpDir, id);
  const file = await Deno.open(tmp, { write: true, createNew: true });
  let batch = new Uint8Array(WRITE_BYTES);
  let spare: Uint8Array<ArrayBuffer> | null = null;
  let filled = 0;
  let writing: Promise<void> | null = null;
  let closed = false;
  const write = async (bytes: Uint8Array) => {
    await writing;
    writing = writeAll(file, bytes);
    writing.catch(() => {}); // awaited before the next write, or at the end
  };
  try {
    for await (const chunk of body) {
      for (let from = 0; from < chunk.byteLength;) {
        const n = Math.min(chunk.byteLength - from, WRITE_BYTES - filled);
        batch.set(chunk.subarray(from, from + n), filled);
        filled += n;
        from += n;
        if (filled === WRITE_BYTES) {
          const full = batch;
          await write(full);
          batch = spare ?? new Uint8Array(WRITE_BYTES);
          spare = full;
          filled = 0;
        }
      }
    }
    await write(batch.subarray(0, filled));
    await writing;
    await file.sync();
    file.close();
    closed = true;
    const sub = join(dir, id.slice(0, 2));
    const target = join(sub, id);
    await exists(target);
    try {
      await Deno.rename(tmp, target);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      await Deno.mkdir(sub, { recursive: true });
      await Deno.rename(tmp, target);
    }
  } catch (err) {
    await (writing as Promise<void> | null)?.catch(() => {});
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
