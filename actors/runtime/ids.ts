import { createHash } from "node:crypto";

/** Time-ordered ids (UUIDv7): sortable for cursor pagination, unique across processes. */
export function uuidv7(now: number = Date.now()): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let ts = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ts % 256;
    ts = Math.floor(ts / 256);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/**
 * A deterministic id from parts (SHA-256, UUID-shaped), for idempotent enqueues and effects.
 * Hashed synchronously (`node:crypto`): `crypto.subtle.digest` is asynchronous, and its round
 * trip costs more than the hash, on the main thread of every message send.
 */
export function deterministicId(...parts: string[]): Promise<string> {
  const hex = createHash("sha256").update(parts.join("\u0000")).digest("hex").slice(0, 32);
  return Promise.resolve(
    `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${hex.slice(16, 20)}-${
      hex.slice(20, 32)
    }`,
  );
}

/**
 * The hash of a request made with an idempotency key: the actor and its input as canonical
 * JSON (object keys sorted), so the same request hashes the same whatever its key order.
 */
export function requestHash(actor: string, input: unknown): string {
  const canonical = JSON.stringify(
    input ?? null,
    (_key, value) =>
      value !== null && typeof value === "object" && !Array.isArray(value)
        ? Object.fromEntries(
          Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
        : value,
  );
  return createHash("sha256").update(`${actor}\u0000${canonical}`).digest("hex");
}
