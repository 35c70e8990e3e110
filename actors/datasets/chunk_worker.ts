/** Worker side of {@link ChunkProcessor}. */
import { serveWorker } from "../runtime/worker_pool.ts";
import { type ChunkJob, processChunk, recycleSegments } from "./chunk_work.ts";

serveWorker(
  {
    process: (bytes: Uint8Array, job: ChunkJob) => processChunk(bytes, job),
    recycle: (buffers: ArrayBuffer[]) => recycleSegments(buffers),
  },
  // The COPY segments move to the main thread.
  (out) => ((out as { copy?: Uint8Array[] }).copy ?? []).map((s) => s.buffer as ArrayBuffer),
);
