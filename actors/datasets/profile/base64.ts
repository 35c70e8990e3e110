/**
 * Standard base64 (RFC 4648, with padding) of byte arrays, and little-endian float64 packing.
 * Internal helpers for the sketches' compact, deterministic serialization.
 * @module
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

/** The value (0-63) of base64 digit `code` (a UTF-16 code unit), or -1 outside the alphabet. */
export function base64Digit(code: number): number {
  return code < 128 ? DECODE[code]! : -1;
}

/** `Uint8Array.prototype.toBase64` (ES2026) where the runtime has it. */
const nativeToBase64 = (Uint8Array.prototype as { toBase64?: () => string }).toBase64;

/** Base64 text of `bytes` (standard alphabet, `=` padding). */
export function encodeBase64(bytes: Uint8Array): string {
  if (nativeToBase64 !== undefined) return nativeToBase64.call(bytes);
  const parts: string[] = [];
  let line = "";
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    line += ALPHABET[v >>> 18]! + ALPHABET[(v >>> 12) & 63]! + ALPHABET[(v >>> 6) & 63]! +
      ALPHABET[v & 63]!;
    if (line.length >= 4096) {
      parts.push(line);
      line = "";
    }
  }
  if (i < n) {
    const b1 = i + 1 < n ? bytes[i + 1]! : 0;
    const v = (bytes[i]! << 16) | (b1 << 8);
    line += ALPHABET[v >>> 18]! + ALPHABET[(v >>> 12) & 63]! +
      (i + 1 < n ? ALPHABET[(v >>> 6) & 63]! : "=") + "=";
  }
  parts.push(line);
  return parts.join("");
}

/** Bytes of base64 text; throws `SyntaxError` on characters outside the alphabet or bad length. */
export function decodeBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw new SyntaxError("base64: length is not a multiple of 4");
  let pad = 0;
  if (text.endsWith("==")) pad = 2;
  else if (text.endsWith("=")) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const v = (sextet(text, i) << 18) | (sextet(text, i + 1) << 12) |
      (sextet(text, i + 2) << 6) | sextet(text, i + 3);
    if (o < out.length) out[o++] = v >>> 16;
    if (o < out.length) out[o++] = (v >>> 8) & 255;
    if (o < out.length) out[o++] = v & 255;
  }
  return out;
}

function sextet(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 61 && i >= text.length - 2) return 0; // '=' padding
  const v = c < 128 ? DECODE[c]! : -1;
  if (v < 0) throw new SyntaxError(`base64: invalid character at ${i}`);
  return v;
}

/** Base64 of the float64 values, little-endian (platform independent). */
export function encodeFloat64(values: ArrayLike<number>): string {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i]!, true);
  return encodeBase64(bytes);
}

/** Inverse of {@link encodeFloat64}. */
export function decodeFloat64(text: string): Float64Array {
  const bytes = decodeBase64(text);
  if (bytes.length % 8 !== 0) throw new SyntaxError("float64 data: length is not a multiple of 8");
  const view = new DataView(bytes.buffer);
  const out = new Float64Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}
