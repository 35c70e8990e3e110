/**
 * A worker started by a `WorkerSpawner` (worker_pool.ts): it leaves the port to its pool where
 * `serveWorker` looks for it, then runs the pool's worker module.
 */
import { workerData } from "node:worker_threads";

const { url, ...rest } = workerData as { url: string } & Record<string, MessagePort>;
const key = "troupe.workerPoolPort";
(globalThis as unknown as Record<symbol, MessagePort | undefined>)[Symbol.for(key)] = rest[key];
await import(url);
