/** The host of a `WorkerSpawner` of its own (`WorkerSpawner.start`, worker_pool.ts). */
import { serveSpawner } from "./worker_pool.ts";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
};
const spawn = serveSpawner((msg, transfer) => scope.postMessage(msg, transfer ?? []));
scope.onmessage = (e) => void spawn(e.data);
