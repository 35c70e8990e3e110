/**
 * The worker of `hashing.ts`: hashes the pieces of several streams at once, each by its id.
 * It says `{ready: true}` once running; `{id, bytes}` adds bytes to stream `id` (started on its
 * first piece) and hands their buffer back, moved (`{done}`); `{id, bytes, read}`, bytes lent
 * in a `SharedArrayBuffer`, adds them and answers `{read}` (the lender may reuse them);
 * `{id, end: true}` answers `{id, sha256}` and forgets it; `{id, drop: true}` forgets it. It
 * also hosts the pools' `WorkerSpawner` (`{troupeSpawn}` messages, see `serveSpawner`).
 */
import { createHash, type Hash } from "node:crypto";
import { serveSpawner } from "@troupe/runtime/workers";

interface HashRequest {
  id: number;
  bytes?: Uint8Array;
  read?: number;
  end?: true;
  drop?: true;
}

interface WorkerScope {
  onmessage: ((e: MessageEvent<HashRequest>) => void) | null;
  postMessage(
    msg:
      | { id: number; sha256: string }
      | { ready: true }
      | { done: ArrayBuffer; n: number }
      | { read: number; n: number },
    transfer?: Transferable[],
  ): void;
}

const scope = self as unknown as WorkerScope;
const open = new Map<number, Hash>();
const spawn = serveSpawner((msg, transfer) =>
  (self as unknown as { postMessage(m: unknown, t?: Transferable[]): void }).postMessage(
    msg,
    transfer ?? [],
  )
);

scope.onmessage = (e) => {
  if (spawn(e.data)) return;
  const { id, bytes, read, end, drop } = e.data;
  if (drop) {
    open.delete(id);
    return;
  }
  let hash = open.get(id);
  if (!hash) open.set(id, hash = createHash("sha256"));
  if (bytes) {
    hash.update(bytes);
    if (read !== undefined) {
      scope.postMessage({ read, n: bytes.byteLength });
    } else {
      const done = bytes.buffer as ArrayBuffer;
      scope.postMessage({ done, n: bytes.byteLength }, [done]);
    }
  }
  if (end) {
    open.delete(id);
    scope.postMessage({ id, sha256: hash.digest("hex") });
  }
};

scope.postMessage({ ready: true });
