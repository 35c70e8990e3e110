/**
 * Credits as exact integer cents. The usage API sends decimals with up to two places; floating
 * point sums drift, so every figure Troupe keeps or adds up is a count of cents (bigint).
 */
import { ValidationError } from "@troupe/runtime";

const DECIMAL = /^(-?)(\d+)(?:\.(\d{1,2}))?$/;

/** `12.5`, `"12.50"` or `3` as cents; more than two decimal places or not a number throws. */
export function toCents(value: number | string): bigint {
  const text = typeof value === "number" ? numberText(value) : value.trim();
  const m = DECIMAL.exec(text);
  if (!m) {
    throw new ValidationError("credits_used is not a decimal with at most 2 places", {
      value,
    });
  }
  const cents = BigInt(m[2]!) * 100n + BigInt((m[3] ?? "").padEnd(2, "0") || "0");
  return m[1] === "-" ? -cents : cents;
}

/** Cents as a decimal string with two places: `1234n` → `"12.34"`. */
export function centsText(cents: bigint): string {
  const sign = cents < 0n ? "-" : "";
  const abs = cents < 0n ? -cents : cents;
  return `${sign}${abs / 100n}.${(abs % 100n).toString().padStart(2, "0")}`;
}

/** Cents as a JSON number (exact while under 2^53 cents, which any real bill is). */
export function centsNumber(cents: bigint): number {
  return Number(centsText(cents));
}

function numberText(n: number): string {
  if (!Number.isFinite(n)) return "NaN";
  // Shortest round-trip text: 0.29 is "0.29", 1e-7 is "1e-7" (rejected by the pattern).
  return String(n);
}
