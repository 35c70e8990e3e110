/** How a claim splits its batch among tenants (`tenantShares`), without a database. */
import assert from "node:assert/strict";
import { checkTenantWeights, tenantShares } from "./sql/claim_jobs.ts";

const shares = (tenants: string[], w: Record<string, number>, n: number, start = 0) =>
  Object.fromEntries(tenantShares(tenants, w, n, start));

Deno.test("tenant shares: by weight, whole parts first, then the largest fractions", () => {
  assert.deepEqual(shares(["a", "b"], {}, 10), { a: 5, b: 5 });
  assert.deepEqual(shares(["a", "b"], { a: 3 }, 8), { a: 6, b: 2 });
  assert.deepEqual(shares(["a", "b"], { a: 3 }, 9), { a: 7, b: 2 }, "6.75 beats 2.25");
  assert.deepEqual(shares(["a", "b", "c"], { "": 2 }, 6), { a: 2, b: 2, c: 2 });
});

Deno.test("tenant shares: ties go in tenant order from the start, so a random start rotates them", () => {
  assert.deepEqual(shares(["a", "b", "c"], {}, 4, 0), { a: 2, b: 1, c: 1 });
  assert.deepEqual(shares(["a", "b", "c"], {}, 4, 2), { a: 1, b: 1, c: 2 });
  assert.deepEqual(shares(["a", "b", "c"], {}, 1, 1), { a: 0, b: 1, c: 0 });
  assert.deepEqual(shares(["a", "b", "c"], {}, 2, 2), { a: 1, b: 0, c: 1 });
});

Deno.test("tenant weights: positive finite numbers only", () => {
  assert.deepEqual(checkTenantWeights({ a: 2, "": 0.5 }), { a: 2, "": 0.5 });
  assert.deepEqual(checkTenantWeights(undefined), {});
  for (const bad of [0, -1, Infinity, NaN]) {
    assert.throws(() => checkTenantWeights({ a: bad }), TypeError);
  }
});
