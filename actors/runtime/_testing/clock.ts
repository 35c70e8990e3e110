/**
 * A clock that moves only when a test moves it. Code that reads the time through an injected
 * `now: () => number` (milliseconds since the epoch, as `Date.now`) is given `clock.now`, and
 * the test advances the clock past a TTL, a window or a back-off instead of sleeping through it.
 * The clock never goes back.
 */
export class ManualClock {
  #ms: number;

  /** Starts at `start` (milliseconds since the epoch). @default Date.now() */
  constructor(start: number = Date.now()) {
    this.#ms = start;
  }

  /** The time now, in milliseconds since the epoch; bound, so it can be passed as `now`. */
  readonly now = (): number => this.#ms;

  /** Moves the clock `ms` milliseconds forward and returns the new time. */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`a clock moves forward, not by ${ms} ms`);
    this.#ms += ms;
    return this.#ms;
  }
}
