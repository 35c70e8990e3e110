/** Worker side of {@link ChunkProcessor}. */
import { backgroundNice, serveWorker } from "@troupe/runtime/workers";
import { type ChunkJob, chunkTypes, processChunk, recycleSegments } from "./chunk_work.ts";

serveWorker(
  {
    // The input goes back with the outcome, to be filled again (ChunkProcessor.input).
    process: (bytes: Uint8Array, job: ChunkJob) => ({
      ...processChunk(bytes, job),
      input: bytes.buffer,
    }),
    types: (bytes: Uint8Array, job: ChunkJob) => chunkTypes(bytes, job),
    recycle: (buffers: ArrayBuffer[]) => recycleSegments(buffers),
  },
  // The COPY segments and the input move to the main thread.
  (out) => {
    const o = out as { copy?: Uint8Array[]; input?: ArrayBuffer };
    return [...(o.copy ?? []).map((s) => s.buffer as ArrayBuffer), ...(o.input ? [o.input] : [])];
  },
  // Background work, at `WORKER_NICE` (see backgroundNice).
  { nice: backgroundNice() },
);
