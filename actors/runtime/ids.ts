import { createHash } from "node:crypto";

/** Two hex digits of each byte value. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
/** Random bytes drawn 4 KiB at a time: ten go into each id. */
const random = new Uint8Array(4096);
let drawn = random.length;

/** Time-ordered ids (UUIDv7): sortable for cursor pagination, unique across processes. */
export function uuidv7(now: number = Date.now()): string {
  if (drawn + 10 > random.length) {
    crypto.getRandomValues(random);
    drawn = 0;
  }
  const r = drawn;
  drawn += 10;
  // 48 bits of milliseconds, then version 7, 12 random bits, variant 10, 62 random bits.
  const hi = Math.floor(now / 0x1000000);
  const lo = now % 0x1000000;
  const b = random;
  return HEX[(hi >>> 16) & 0xff]! + HEX[(hi >>> 8) & 0xff]! + HEX[hi & 0xff]! +
    HEX[(lo >>> 16) & 0xff]! + "-" + HEX[(lo >>> 8) & 0xff]! + HEX[lo & 0xff]! + "-" +
    HEX[(b[r]! & 0x0f) | 0x70]! + HEX[b[r + 1]!]! + "-" + HEX[(b[r + 2]! & 0x3f) | 0x80]! +
    HEX[b[r + 3]!]! + "-" + HEX[b[r + 4]!]! + HEX[b[r + 5]!]! + HEX[b[r + 6]!]! +
    HEX[b[r + 7]!]! + HEX[b[r + 8]!]! + HEX[b[r + 9]!]!;
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
