/**
 * {@linkcode StepBudget}: how long one delivery of a stepped job may go on taking work.
 *
 * Long work runs as a chain of steps: each delivery does a bounded part (a batch of items),
 * then commits its progress together with the message for the next step (`ctx.setState`,
 * `ctx.effect` and `ctx.send` to itself with a cursor in the input). A crash or a timeout
 * then redoes one step, never the job. The budget decides where a step ends.
 *
 * Invariants:
 * - A step asks {@linkcode StepBudget.spent} after each item; once `fraction` of the budget has
 *   elapsed (since the budget was made, at the handler's start) it takes no more, so the item in
 *   hand has the rest of the budget to finish in. An item must fit in that rest.
 * - A step always takes at least one item (it asks only after one): a chain always advances.
 * - `0` (or `Infinity`) is no budget: `spent()` is never true, and a job runs in one delivery.
 * - {@linkcode StepBudget.pause} between items gives the event loop back (timers, I/O, other
 *   handlers) once the step has held it for `holdMs`: items of synchronous work would otherwise
 *   hold it for the whole step.
 *
 * @example A step that takes items until the budget is spent
 * ```ts
 * import { StepBudget } from "@troupe/runtime";
 *
 * const budget = new StepBudget(30_000);
 * const items = [1, 2, 3];
 * let at = 0;
 * while (at < items.length) {
 *   at++; // the work of one item
 *   if (budget.spent()) break;
 *   await budget.pause();
 * }
 * // `at` is where the next step resumes (sent with it, in its input).
 * ```
 * @module
 */

/** Options of a {@linkcode StepBudget}. */
export interface StepBudgetOptions {
  /**
   * The share of the budget after which a step takes no more work; the rest is for the item in
   * hand and the commit.
   * @default 0.5
   */
  fraction?: number;
  /**
   * How long a step may hold the event loop before {@link StepBudget.pause} gives it back, in
   * milliseconds.
   * @default 10
   */
  holdMs?: number;
  /** The clock, in milliseconds. @default performance.now */
  now?: () => number;
}

/** The time one delivery of a stepped job may go on taking work (see the module doc). */
export class StepBudget {
  /** The budget in milliseconds (`Infinity` when there is none). */
  readonly ms: number;
  readonly #now: () => number;
  readonly #start: number;
  readonly #until: number;
  readonly #holdMs: number;
  #held: number;

  /** A budget of `ms` milliseconds from now; `0` or `Infinity`: none. */
  constructor(
    ms: number,
    { fraction = 0.5, holdMs = 10, now = () => performance.now() }: StepBudgetOptions = {},
  ) {
    if (!(ms >= 0)) throw new RangeError(`step budget: ${ms} ms`);
    if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`step budget: fraction ${fraction}`);
    this.ms = ms === 0 ? Infinity : ms;
    this.#now = now;
    this.#start = now();
    this.#until = this.#start + this.ms * fraction;
    this.#holdMs = holdMs;
    this.#held = this.#start;
  }

  /** Milliseconds since the budget was made. */
  get elapsedMs(): number {
    return this.#now() - this.#start;
  }

  /** Whether the step should take no more work: its share of the budget has elapsed. */
  spent(): boolean {
    return this.#now() >= this.#until;
  }

  /**
   * Gives the event loop back (a macrotask turn) when the step has held it for `holdMs` since
   * the budget was made or the last pause that gave it back; else returns at once.
   */
  async pause(): Promise<void> {
    if (this.#now() - this.#held < this.#holdMs) return;
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    this.#held = this.#now();
  }
}
