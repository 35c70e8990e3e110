/** Order statistics of benchmark samples. */

/** The sample at fraction `p` (0..1) of `xs` in ascending order (nearest rank below). */
export function pct(xs: readonly number[], p: number): number {
  return [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
}

/** The middle sample (the upper one of two for an even count). */
export function median(xs: readonly number[]): number {
  return pct(xs, 0.5);
}

/** The host's 1, 5 and 15 minute load averages, as printed beside every figure. */
export function loadAverage(): string {
  return Deno.loadavg().map((x) => x.toFixed(1)).join(" ");
}
