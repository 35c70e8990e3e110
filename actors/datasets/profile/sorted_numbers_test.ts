import assert from "node:assert/strict";
import { decodeSorted, encodeSorted, sortAndEncode } from "./sorted_numbers.ts";
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

Deno.test("sortAndEncode: sorts in place and gives encodeSorted's text, by radix or not", () => {
  const r = prng(11);
  const cases: number[][] = [
    Array.from({ length: 20_000 }, () => Math.round(r() * 1e5) / 100), // cents: radix, 2 passes
    Array.from({ length: 5_000 }, () => Math.round((r() - 0.5) * 2 ** 32) - 7), // 3 passes
    Array.from({ length: 3_000 }, () => Math.round(r() * 1e6) / 1e4 - 50), // negative decimals
    Array.from({ length: 4_000 }, () => Math.floor(r() * 3)), // few distinct
    Array.from({ length: 1_000 }, (_, i) => 1_000_000 + i), // ascending already
    Array.from({ length: 2_000 }, () => (r() - 0.5) * 2 ** 40), // no scale: doubles
    Array.from({ length: 2_000 }, () => Math.round(r() * 2 ** 34)), // integers spanning ≥ 2^32
    Array.from({ length: 100 }, () => Math.round(r() * 1e4) / 10), // too few for the radix
    [],
    [3],
  ];
  for (const values of cases) {
    const numbers = Float64Array.from(values);
    const sorted = Float64Array.from(values).sort();
    assert.equal(sortAndEncode(numbers), encodeSorted(sorted));
    assert.deepEqual(numbers, sorted);
  }
});
