import assert from "node:assert/strict";
import { bool, int, list, oneOf, parseFields, text } from "./env_fields.ts";

Deno.test("env fields: trimmed values, defaults, unset and required, each problem named", () => {
  const fields = {
    N: int(1, 10).withDefault(5),
    MODE: oneOf(["a", "b"]),
    FLAG: bool().orUnset(),
    NAME: text({ min: 3 }).check((v) => v !== "bad", "must not be bad").orUnset(),
    HOSTS: list((h) => !h.includes(" "), "no spaces").withDefault([]),
  };
  const ok = parseFields(fields, { N: " 7 ", MODE: "b", NAME: "  abc ", HOSTS: " x, ,y " });
  assert.deepEqual(ok, {
    ok: true,
    value: { N: 7, MODE: "b", NAME: "abc", HOSTS: ["x", "y"] },
  });
  assert.equal("FLAG" in (ok.ok ? ok.value : {}), false, "unset optional fields have no key");
  assert.deepEqual(parseFields(fields, { MODE: "a", N: "  " }), {
    ok: true,
    value: { N: 5, MODE: "a", HOSTS: [] },
  });
  const bad = parseFields(fields, { N: "11", FLAG: "yes", NAME: "bad" });
  assert.ok(!bad.ok);
  assert.deepEqual(bad.problems, [
    { name: "N", message: "must be at most 10" },
    { name: "MODE", message: "required" },
    { name: "FLAG", message: "expected one of true, false, 1, 0" },
    { name: "NAME", message: "must not be bad" },
  ]);
  const short = parseFields(fields, { MODE: "c", NAME: "ab", N: "1.5" });
  assert.deepEqual(!short.ok && short.problems.map((p) => p.message), [
    "must be a whole number",
    "expected one of a, b",
    "must have at least 3 characters",
  ]);
});

Deno.test("env fields: cross-checks run once every field has parsed", () => {
  const fields = { A: int(0, 9).orUnset(), B: int(0, 9).orUnset() };
  let runs = 0;
  const cross = (
    c: { A?: number | undefined; B?: number | undefined },
    problem: (n: "A" | "B", m: string) => void,
  ) => {
    runs++;
    if (c.A !== undefined && c.B === undefined) problem("B", "required with A");
  };
  assert.deepEqual(parseFields(fields, { A: "1" }, cross), {
    ok: false,
    problems: [{ name: "B", message: "required with A" }],
  });
  assert.equal(runs, 1);
  assert.equal(parseFields(fields, { A: "x" }, cross).ok, false);
  assert.equal(runs, 1);
  assert.deepEqual(parseFields(fields, { A: "1", B: "2" }, cross), {
    ok: true,
    value: { A: 1, B: 2 },
  });
});
