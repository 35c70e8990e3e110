/**
 * Exact counts of strings, keyed by their 64-bit hash ({@link hash64}): an open-addressing
 * table over dense arrays, as in {@link TopK}, that grows instead of purging. The hash is the
 * one the distinct-count sketch and the top-k take, so a value is hashed once whichever of
 * them counts it, and the entries go to the sketches without being hashed again (a JS `Map`
 * would hash each string again, its own way). A number is kept as a number, its
 * text made again when asked for: kept texts outlive the young generation, which costs the
 * chunk workers garbage-collection time.
 * @module
 */

interface Buffers {
  table: Int32Array;
  h1: Int32Array;
  h2: Int32Array;
  counts: Float64Array;
  numbers: Float64Array | null;
}

/**
 * Buffers of released tables, for the next ones: a column of many distinct values fills a
 * table of ~0.3 MB and drops it at its spill or at the end of its chunk, chunk after chunk;
 * taken up again, the buffers do not pile up in the chunk workers waiting to be collected.
 */
const spare: Buffers[] = [];
const SPARE_MAX = 8;
/** Entries of a new table; one that grows past them takes a spare table if there is one. */
const INITIAL_ENTRIES = 128;

/** Exact counts of strings, in first-seen order. */
export class ExactCounts {
  /**
   * Open-addressing index: entry number + 1 per slot, 0 for an empty slot; at most 3/4 full
   * (linear probing stays short, and the index of 10,000 strings takes 64 KB).
   */
  #table: Int32Array = new Int32Array(2 * INITIAL_ENTRIES);
  #mask = 2 * INITIAL_ENTRIES - 1;
  /** The strings; `undefined` for a number, in `#numbers` (made at the first number). */
  #keys: (string | undefined)[] = [];
  #numbers: Float64Array | null = null;
  #h1: Int32Array = new Int32Array(INITIAL_ENTRIES);
  #h2: Int32Array = new Int32Array(INITIAL_ENTRIES);
  #counts: Float64Array = new Float64Array(INITIAL_ENTRIES);
  #size = 0;
  #chars = 0;

  /** Empties the table and gives its grown buffers to a table made later. */
  release(): void {
    if (spare.length < SPARE_MAX && this.#counts.length > INITIAL_ENTRIES) {
      const numbers = this.#numbers?.length === this.#counts.length ? this.#numbers : null;
      spare.push({ table: this.#table, h1: this.#h1, h2: this.#h2, counts: this.#counts, numbers });
      this.#table = new Int32Array(2 * INITIAL_ENTRIES);
      this.#mask = 2 * INITIAL_ENTRIES - 1;
      this.#h1 = new Int32Array(INITIAL_ENTRIES);
      this.#h2 = new Int32Array(INITIAL_ENTRIES);
      this.#counts = new Float64Array(INITIAL_ENTRIES);
    } else this.#table.fill(0);
    this.#keys = [];
    this.#numbers = null;
    this.#size = 0;
    this.#chars = 0;
  }

  /** Number of distinct strings. */
  get size(): number {
    return this.#size;
  }

  /** Total length (UTF-16 code units) of the distinct strings. */
  get chars(): number {
    return this.#chars;
  }

  /**
   * Adds `c` to the count of `s` (hash `h1`, `h2`, signed or not); `num`, when given, is the
   * number whose `String()` is `s`. A new string is added only while the table then holds at
   * most `maxSize` strings of at most `maxChars` code units in all; `false` when it was
   * refused.
   */
  add(
    s: string,
    h1: number,
    h2: number,
    c: number,
    maxSize: number,
    maxChars: number,
    num?: number,
  ): boolean {
    h1 |= 0;
    h2 |= 0;
    const table = this.#table;
    const mask = this.#mask;
    let slot = h1 & mask;
    for (;;) {
      const entry = table[slot]!;
      if (entry === 0) break;
      const i = entry - 1;
      if (this.#h1[i] === h1 && this.#h2[i] === h2) {
        const key = this.#keys[i];
        if (
          key === undefined
            ? (num !== undefined ? this.#numbers![i] === num : String(this.#numbers![i]) === s)
            : key === s
        ) {
          this.#counts[i]! += c;
          return true;
        }
      }
      slot = (slot + 1) & mask;
    }
    const i = this.#size;
    if (i >= maxSize || this.#chars + s.length > maxChars) return false;
    if (i === this.#counts.length) this.#grow(maxSize);
    if (num === undefined) this.#keys.push(s);
    else {
      this.#keys.push(undefined);
      this.#numbers ??= new Float64Array(this.#counts.length);
      this.#numbers[i] = num;
    }
    this.#h1[i] = h1;
    this.#h2[i] = h2;
    this.#counts[i] = c;
    this.#size++;
    this.#chars += s.length;
    if (this.#size * 4 > (this.#mask + 1) * 3) this.#reindex();
    else if (this.#table === table) table[slot] = i + 1;
    else this.#place(i); // #grow moved the entries to another table
    return true;
  }

  /** The `i`-th string in first-seen order (i < size). */
  key(i: number): string {
    return this.#keys[i] ?? String(this.#numbers![i]);
  }

  /** The number it is the text of, if it was added as one. */
  number(i: number): number | undefined {
    return this.#keys[i] === undefined ? this.#numbers![i] : undefined;
  }

  /** Its count. */
  count(i: number): number {
    return this.#counts[i]!;
  }

  /** Lane 1 of its hash. */
  h1(i: number): number {
    return this.#h1[i]!;
  }

  /** Lane 2 of its hash. */
  h2(i: number): number {
    return this.#h2[i]!;
  }

  /**
   * Arrays twice as large, but not past `max` entries; or a released table's, when one is
   * larger.
   */
  #grow(max: number): void {
    if (this.#adopt()) return;
    const size = Math.max(this.#counts.length + 1, Math.min(this.#counts.length * 2, max));
    const h1 = new Int32Array(size);
    h1.set(this.#h1);
    this.#h1 = h1;
    const h2 = new Int32Array(size);
    h2.set(this.#h2);
    this.#h2 = h2;
    const counts = new Float64Array(size);
    counts.set(this.#counts);
    this.#counts = counts;
    if (this.#numbers !== null) {
      const numbers = new Float64Array(size);
      numbers.set(this.#numbers);
      this.#numbers = numbers;
    }
  }

  /** Moves the entries into the largest spare table, if one holds more; `false` if none. */
  #adopt(): boolean {
    let best = -1;
    for (let i = 0; i < spare.length; i++) {
      if (spare[i]!.counts.length > (best < 0 ? this.#counts.length : spare[best]!.counts.length)) {
        best = i;
      }
    }
    if (best < 0) return false;
    const b = spare.splice(best, 1)[0]!;
    const n = this.#size;
    b.h1.set(this.#h1.subarray(0, n));
    b.h2.set(this.#h2.subarray(0, n));
    b.counts.set(this.#counts.subarray(0, n));
    if (this.#numbers !== null) {
      b.numbers ??= new Float64Array(b.counts.length);
      b.numbers.set(this.#numbers.subarray(0, n));
    }
    this.#h1 = b.h1;
    this.#h2 = b.h2;
    this.#counts = b.counts;
    this.#numbers = b.numbers;
    this.#table = b.table;
    this.#table.fill(0);
    this.#mask = this.#table.length - 1;
    for (let i = 0; i < n; i++) this.#place(i);
    return true;
  }

  /** Indexes entry `i` (not in the index yet). */
  #place(i: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let slot = this.#h1[i]! & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = i + 1;
  }

  /** An index twice as large. */
  #reindex(): void {
    const table = new Int32Array((this.#mask + 1) * 2);
    const mask = table.length - 1;
    for (let i = 0; i < this.#size; i++) {
      let slot = this.#h1[i]! & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = i + 1;
    }
    this.#table = table;
    this.#mask = mask;
  }
}
