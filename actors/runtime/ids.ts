import { createHash } from "node:crypto";

/** The character codes of the hex digits. */
const DIGITS = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
/** Random bytes drawn 4 KiB at a time: ten go into each id. */
const random = new Uint8Array(4096);
let drawn = random.length;
/** The character codes of the id being made; the dashes stay where they are. */
const codes: number[] = Array.from("00000000-0000-0000-0000-000000000000", (c) => c.charCodeAt(0));

/** Writes `byte` as two hex digits at `at` of `codes`. */
function hex(at: number, byte: number): void {
  codes[at] = DIGITS[byte >>> 4]!;
  codes[at + 1] = DIGITS[byte & 0x0f]!;
}

/**
 * Time-ordered ids (UUIDv7): sortable for cursor pagination, unique across processes. The
 * string is made from its character codes in one go (joining 20 pieces makes a string each).
 */
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
  hex(0, (hi >>> 16) & 0xff);
  hex(2, (hi >>> 8) & 0xff);
  hex(4, hi & 0xff);
  hex(6, (lo >>> 16) & 0xff);
  hex(9, (lo >>> 8) & 0xff);
  hex(11, lo & 0xff);
  hex(14, (b[r]! & 0x0f) | 0x70);
  hex(16, b[r + 1]!);
  hex(19, (b[r + 2]! & 0x3f) | 0x80);
  hex(21, b[r + 3]!);
  hex(24, b[r + 4]!);
  hex(26, b[r + 5]!);
  hex(28, b[r + 6]!);
  hex(30, b[r + 7]!);
  hex(32, b[r + 8]!);
  hex(34, b[r + 9]!);
  return String.fromCharCode.apply(null, codes);
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
