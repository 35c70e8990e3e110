/**
 * Time limits of running handlers without a timer each. The limits of one length end in the
 * order they were set (the clock only goes forward), so each length keeps its limits in a queue
 * and one timer, for the oldest that is still set. A limit that is cleared stays in its queue,
 * marked, until the timer passes it; a queue with no limit set has no timer.
 */

/** The longest delay a timer takes (a longer one fires at once): longer limits are re-armed. */
const MAX_DELAY_MS = 2 ** 31 - 1;

interface Lane {
  /** The limits set, oldest first, from `head` on. */
  readonly limits: Limit[];
  head: number;
  /** How many of them are still set. */
  live: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A limit set by {@link Deadlines.set}; `clear` ends it without calling its `expire`. */
export interface Deadline {
  clear(): void;
}

/** A limit in its lane's queue; the deadline `set` returns. */
class Limit implements Deadline {
  /** When it ends (`performance.now()` time). */
  readonly at: number;
  /** Unset once it ended or was cleared. */
  expire: (() => void) | undefined;
  readonly #lanes: Map<number, Lane>;
  readonly #ms: number;
  readonly #lane: Lane;

  constructor(lanes: Map<number, Lane>, ms: number, lane: Lane, at: number, expire: () => void) {
    this.#lanes = lanes;
    this.#ms = ms;
    this.#lane = lane;
    this.at = at;
    this.expire = expire;
  }

  clear(): void {
    if (!this.expire) return;
    this.expire = undefined;
    if (--this.#lane.live === 0) stop(this.#lanes, this.#ms, this.#lane);
  }
}

/** Stops the timer of a lane with no limit set and drops it. */
function stop(lanes: Map<number, Lane>, ms: number, lane: Lane): void {
  if (lane.timer !== undefined) clearTimeout(lane.timer);
  lane.timer = undefined;
  if (lanes.get(ms) === lane) lanes.delete(ms);
}

export class Deadlines {
  readonly #lanes = new Map<number, Lane>();

  /**
   * Calls `expire` once `ms` have passed since `from` (a `performance.now()` time no earlier
   * than that of the limits of this length set before; now by default), unless the returned
   * deadline is cleared first.
   */
  set(ms: number, expire: () => void, from: number = performance.now()): Deadline {
    let lane = this.#lanes.get(ms);
    if (!lane) this.#lanes.set(ms, lane = { limits: [], head: 0, live: 0, timer: undefined });
    const limit = new Limit(this.#lanes, ms, lane, from + ms, expire);
    lane.limits.push(limit);
    lane.live++;
    if (lane.timer === undefined) this.#arm(ms, lane, limit.at - performance.now());
    return limit;
  }

  /** How many limits are set (for tests). */
  get size(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.live;
    return n;
  }

  #arm(ms: number, lane: Lane, delay: number): void {
    lane.timer = setTimeout(() => this.#due(ms, lane), Math.min(Math.max(0, delay), MAX_DELAY_MS));
  }

  #due(ms: number, lane: Lane): void {
    lane.timer = undefined;
    const now = performance.now();
    const { limits } = lane;
    while (lane.head < limits.length) {
      const limit = limits[lane.head]!;
      if (limit.expire && limit.at > now) break;
      lane.head++;
      const expire = limit.expire;
      if (!expire) continue;
      limit.expire = undefined;
      lane.live--;
      expire();
    }
    if (lane.live === 0) return stop(this.#lanes, ms, lane);
    // Drop what was passed now and then, not on every run: the queue is a plain array.
    if (lane.head > 1024 && lane.head * 2 > limits.length) {
      limits.splice(0, lane.head);
      lane.head = 0;
    }
    // An `expire` that set a limit of this length armed the lane again: one timer is enough.
    if (lane.timer !== undefined) clearTimeout(lane.timer);
    this.#arm(ms, lane, limits[lane.head]!.at - now);
  }
}
