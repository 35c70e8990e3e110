import assert from "node:assert/strict";
import { decodeSorted, encodeSorted } from "./sorted_numbers.ts";
import { prng } from "./test_util.ts";

function roundTrip(values: number[]): string {
  const sorted = Float64Array.from(values).sort();
  const text = encodeSorted(sorted);
  assert.deepEqual(decodeSorted(text), sorted);
  return text;
}

Deno.test("sorted numbers: exact round trip of decimals, integers and any double", () => {
  const r = prng(7);
  const cents = Array.from({ length: 5000 }, () => Math.round(r() * 1e7) / 100);
  // Gaps of ~2,000 cents: two bytes, 2.7 characters a number (base64 float64 takes 10.7).
  assert.ok(roundTrip(cents).length < 5000 * 3, "compact");
  roundTrip(Array.from({ length: 3000 }, (_, i) => 1_000_003 + i * 7));
  roundTrip([-5.25, 0, 3, 1e-7, 123456.789]);
  roundTrip([-5.25, 0, 3, 1e-7, 123456.789, -(2 ** 52), 2 ** 52]); // raw: no scale fits all
  assert.deepEqual(decodeSorted(encodeSorted(Float64Array.of(-0, 1))), Float64Array.of(0, 1));
  const any = Array.from({ length: 500 }, () => (r() - 0.5) * 1e300 * r());
  roundTrip([...any, Math.PI, Number.MIN_VALUE, -Number.MAX_VALUE, 0.1 + 0.2]);
  roundTrip([]);
  roundTrip([42]);
});

Deno.test("sorted numbers: malformed text throws", () => {
  const text = encodeSorted(Float64Array.of(1, 2, 3));
  assert.throws(() => decodeSorted(text.slice(0, -4)), TypeError);
  assert.throws(() => decodeSorted("!!!!"), SyntaxError);
  assert.throws(() => decodeSorted(btoa(String.fromCharCode(99))), TypeError);
});
