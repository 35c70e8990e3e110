/**
 * Group commit: writes asked for while a batch is being written wait, and go together in the
 * next batch (one transaction, or one statement, for all of them), so that many requests
 * finishing at once cost a few round trips and commits instead of one each.
 *
 * Invariants:
 * - A caller's promise settles only once its own item is written (its batch committed), or
 *   with its own item's error: a batch that fails is written again item by item (nothing of
 *   the failed batch was kept: it was one transaction), so one bad item fails alone.
 * - At most `parallel` batches are written at once, each of at most `maxBatch` items, in the
 *   order the items came.
 */

/** What a {@link GroupCommit} writes with. */
export interface GroupCommitOptions<T, R> {
  /** Writes `items` as one (all or nothing); resolves with each item's result, in order. */
  write: (items: T[]) => Promise<R[]>;
  /** Most items in a batch. @default 100 */
  maxBatch?: number;
  /** Batches written at once. @default 1 */
  parallel?: number;
}

interface Waiting<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

/** Batches concurrent writes (see the invariants above). */
export class GroupCommit<T, R> {
  readonly #write: (items: T[]) => Promise<R[]>;
  readonly #maxBatch: number;
  readonly #parallel: number;
  readonly #queue: Waiting<T, R>[] = [];
  #running = 0;

  constructor({ write, maxBatch = 100, parallel = 1 }: GroupCommitOptions<T, R>) {
    this.#write = write;
    this.#maxBatch = Math.max(1, maxBatch);
    this.#parallel = Math.max(1, parallel);
  }

  /** Writes `item` with the others waiting; resolves with its result once it is written. */
  add(item: T): Promise<R> {
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#queue.push({ item, resolve, reject });
    this.#next();
    return promise;
  }

  #next(): void {
    while (this.#running < this.#parallel && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#running++;
      this.#run(batch).finally(() => {
        this.#running--;
        this.#next();
      });
    }
  }

  async #run(batch: Waiting<T, R>[]): Promise<void> {
    try {
      const results = await this.#write(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(results[i]!));
      return;
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
    }
    for (const w of batch) {
      try {
        w.resolve((await this.#write([w.item]))[0]!);
      } catch (err) {
        w.reject(err);
      }
    }
  }
}
