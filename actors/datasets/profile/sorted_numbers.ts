/**
 * Compact, exact serialization of ascending numbers, for the numbers a profile keeps for exact
 * quantiles. Real columns are mostly decimals of a few digits (prices, scores, ids): as
 * integers m = x·10^d, sorted, their gaps are small, and one to three bytes each hold what
 * base64 float64 takes eight for (10.7 characters a number).
 *
 * Bytes, then base64: `d` (0…15) followed by the count, m₀ (zigzag) and the gaps m_i − m_{i−1},
 * as unsigned LEB128 varints; or 255 followed by the float64s (little-endian) when no `d`
 * brings every number back exactly (or the input is not sorted). Decoding computes `m / 10^d`, one correctly rounded
 * division of exact doubles (|m| < 2^52, 10^d ≤ 10^15), and the encoder checks that it gives
 * each number back, so the round trip is exact (`-0` is read as `0`).
 * @module
 */
import { decodeBase64, encodeBase64 } from "./base64.ts";

const MAX_SCALE = 15;
const POW10 = Array.from({ length: MAX_SCALE + 1 }, (_, i) => 10 ** i);
/** Largest |m| encoded as an integer (zigzag stays exact below 2^53). */
const MAX_INT = 2 ** 52;
const RAW = 255;

/** Base64 text of ascending finite `sorted` (not checked: an unsorted input is stored raw). */
export function encodeSorted(sorted: Float64Array): string {
  const d = scaleOf(sorted);
  if (d < 0) {
    const bytes = new Uint8Array(1 + sorted.length * 8);
    bytes[0] = RAW;
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < sorted.length; i++) view.setFloat64(1 + i * 8, sorted[i]!, true);
    return encodeBase64(bytes);
  }
  const p = POW10[d]!;
  const out = new ByteWriter(16 + sorted.length * 2);
  out.byte(d);
  out.varint(sorted.length);
  let prev = 0;
  for (let i = 0; i < sorted.length; i++) {
    const m = Math.round(sorted[i]! * p);
    if (i === 0) out.varint(m >= 0 ? 2 * m : -2 * m - 1);
    else out.varint(m - prev);
    prev = m;
  }
  return encodeBase64(out.bytes());
}

/**
 * Sorts finite `numbers` in place and returns {@link encodeSorted} of them. Decimals of one
 * scale whose integers span less than 2^32 (nearly every column) are sorted as those integers,
 * by a radix sort in a few linear passes (`Float64Array.prototype.sort` compares its way through
 * n log n steps; run `sortAndEncode`'s test file's cases through both to compare). Others are
 * sorted as doubles. Input already ascending is not sorted again.
 */
export function sortAndEncode(numbers: Float64Array): string {
  const n = numbers.length;
  if (ascending(numbers)) return encodeSorted(numbers);
  const d = n < RADIX_MIN ? -1 : anyScaleOf(numbers);
  if (d < 0) return encodeSorted(numbers.sort());
  const p = POW10[d]!;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = numbers[i]!;
    const m = Math.round(x * p);
    // What the decoder relies on: each number comes back from its m (checked at this scale,
    // though a number that fitted a smaller one fits it too).
    if (m / p !== x || m > MAX_INT || m < -MAX_INT) return encodeSorted(numbers.sort());
    if (m < min) min = m;
    if (m > max) max = m;
  }
  if (max - min >= 2 ** 32) return encodeSorted(numbers.sort());
  let keys = scratchKeys(n, 0);
  for (let i = 0; i < n; i++) keys[i] = Math.round(numbers[i]! * p) - min;
  keys = radixSort(keys, scratchKeys(n, 1), n, max - min);
  const out = new ByteWriter(16 + n * 2);
  out.byte(d);
  out.varint(n);
  out.varint(min >= 0 ? 2 * min : -2 * min - 1);
  numbers[0] = min / p;
  for (let i = 1; i < n; i++) {
    const k = keys[i]!;
    out.varint(k - keys[i - 1]!);
    numbers[i] = (min + k) / p; // the number itself: each one was checked to come back from its m
  }
  return encodeBase64(out.bytes());
}

/** Below this many numbers, a plain sort is as fast as the radix sort's passes. */
const RADIX_MIN = 256;
/** Bits a radix-sort pass sorts by (2,048 buckets, in L1). */
const RADIX_BITS = 11;
const RADIX_MASK = (1 << RADIX_BITS) - 1;
/** The radix sort's key buffers, kept for the next call up to this many numbers (256 KiB). */
const SCRATCH_MAX = 32 * 1024;
const scratch: [Uint32Array, Uint32Array] = [new Uint32Array(0), new Uint32Array(0)];
const histograms = new Uint32Array(3 << RADIX_BITS);

function scratchKeys(n: number, which: 0 | 1): Uint32Array {
  if (scratch[which].length >= n) return scratch[which];
  const keys = new Uint32Array(n);
  if (n <= SCRATCH_MAX) scratch[which] = keys;
  return keys;
}

/**
 * Sorts `keys[0, n)` (each at most `range` < 2^32), least significant digit first, through
 * `spare`; returns whichever of the two holds the sorted keys.
 */
function radixSort(keys: Uint32Array, spare: Uint32Array, n: number, range: number): Uint32Array {
  const passes = Math.max(1, Math.ceil((32 - Math.clz32(range)) / RADIX_BITS));
  const h = histograms;
  h.fill(0);
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    h[k & RADIX_MASK]!++;
    h[(1 << RADIX_BITS) + ((k >>> RADIX_BITS) & RADIX_MASK)]!++;
    h[(2 << RADIX_BITS) + (k >>> (2 * RADIX_BITS))]!++;
  }
  let from = keys;
  let to = spare;
  for (let pass = 0; pass < passes; pass++) {
    const base = pass << RADIX_BITS;
    const shift = pass * RADIX_BITS;
    let sum = 0;
    for (let b = 0; b <= RADIX_MASK; b++) {
      const c = h[base + b]!;
      h[base + b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const k = from[i]!;
      to[h[base + ((k >>> shift) & RADIX_MASK)]!++] = k;
    }
    [from, to] = [to, from];
  }
  return from;
}

function ascending(a: Float64Array): boolean {
  for (let i = 1; i < a.length; i++) if (!(a[i]! >= a[i - 1]!)) return false;
  return true;
}

/**
 * The smallest `d` that brings back each number (in any order) from `round(x·10^d)` at the
 * scale it was reached, or -1; the caller checks every number at the `d` found.
 */
function anyScaleOf(numbers: Float64Array): number {
  let d = 0;
  for (let i = 0; i < numbers.length; i++) {
    const x = numbers[i]!;
    while (d <= MAX_SCALE && !fits(x, POW10[d]!)) d++;
    if (d > MAX_SCALE) return -1;
  }
  return d;
}

/** Inverse of {@link encodeSorted}; throws `SyntaxError` or `TypeError` on malformed text. */
export function decodeSorted(text: string): Float64Array {
  const bytes = decodeBase64(text);
  const d = bytes[0];
  if (d === RAW) {
    if ((bytes.length - 1) % 8 !== 0) throw new TypeError("numbers: bad length");
    const view = new DataView(bytes.buffer, bytes.byteOffset + 1);
    const out = new Float64Array((bytes.length - 1) / 8);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
    return out;
  }
  if (d === undefined || d > MAX_SCALE) throw new TypeError("numbers: bad scale");
  const p = POW10[d]!;
  const r = new ByteReader(bytes, 1);
  const n = r.varint();
  if (n > bytes.length) throw new TypeError("numbers: bad count");
  const out = new Float64Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    if (i === 0) {
      const z = r.varint();
      m = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    } else m += r.varint();
    if (m > MAX_INT || m < -MAX_INT) throw new TypeError("numbers: out of range");
    out[i] = m / p;
  }
  if (r.at !== bytes.length) throw new TypeError("numbers: trailing bytes");
  return out;
}

/** The smallest `d` that brings back every number from `round(x·10^d)`, or -1. */
function scaleOf(sorted: Float64Array): number {
  const n = sorted.length;
  if (n === 0) return 0;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const x = sorted[i]!;
    if (i > 0 && !(x >= sorted[i - 1]!)) return -1;
    while (d <= MAX_SCALE && !fits(x, POW10[d]!)) d++;
    if (d > MAX_SCALE) return -1;
  }
  // A larger scale names the same decimals, so the numbers that fitted a smaller one still
  // fit; checked again all the same, as that is what the decoder relies on.
  const p = POW10[d]!;
  for (let i = 0; i < n; i++) if (!fits(sorted[i]!, p)) return -1;
  return d;
}

function fits(x: number, p: number): boolean {
  const m = Math.round(x * p);
  return m <= MAX_INT && m >= -MAX_INT && m / p === x;
}

class ByteWriter {
  #buf: Uint8Array;
  #at = 0;

  constructor(size: number) {
    this.#buf = new Uint8Array(size);
  }

  byte(b: number): void {
    if (this.#at === this.#buf.length) this.#grow();
    this.#buf[this.#at++] = b;
  }

  /**
   * Unsigned LEB128 of a non-negative integer below 2^53 (32-bit shifts below 2^31,
   * arithmetic above).
   */
  varint(v: number): void {
    if (this.#at + 8 > this.#buf.length) this.#grow();
    const buf = this.#buf;
    let at = this.#at;
    while (v >= 2 ** 31) {
      buf[at++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    while (v >= 128) {
      buf[at++] = (v & 127) | 128;
      v >>>= 7;
    }
    buf[at++] = v;
    this.#at = at;
  }

  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#at);
  }

  #grow(): void {
    const bigger = new Uint8Array(this.#buf.length * 2);
    bigger.set(this.#buf);
    this.#buf = bigger;
  }
}

class ByteReader {
  constructor(readonly buf: Uint8Array, public at: number) {}

  varint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.buf[this.at++];
      if (b === undefined || scale > 2 ** 49) throw new TypeError("numbers: bad varint");
      v += (b & 127) * scale;
      if (b < 128) return v;
      scale *= 128;
    }
  }
}
