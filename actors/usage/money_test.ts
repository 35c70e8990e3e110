import assert from "node:assert/strict";
import { centsNumber, centsText, toCents } from "./money.ts";

Deno.test("credits become exact cents from numbers and strings", () => {
  assert.equal(toCents(0.29), 29n);
  assert.equal(toCents(12.5), 1250n);
  assert.equal(toCents(3), 300n);
  assert.equal(toCents("12.05"), 1205n);
  assert.equal(toCents("-0.5"), -50n);
  // 0.1 + 0.2 as floats is 0.30000000000000004; as cents it is exact.
  assert.equal(toCents(0.1) + toCents(0.2), toCents(0.3));
});

Deno.test("credits with more than two places or not numbers are refused", () => {
  for (const bad of [0.125, "1.234", "abc", "", Number.NaN, Infinity, 1e-7]) {
    assert.throws(() => toCents(bad as number | string));
  }
});

Deno.test("cents print with two places", () => {
  assert.equal(centsText(1234n), "12.34");
  assert.equal(centsText(5n), "0.05");
  assert.equal(centsText(-105n), "-1.05");
  assert.equal(centsNumber(1999n), 19.99);
});
