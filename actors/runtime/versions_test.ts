import assert from "node:assert/strict";
import { z } from "zod";
import { defineActor } from "./define.ts";
import { decodeInput, upgradeInput } from "./versions.ts";

const v3 = defineActor({
  name: "v.t",
  version: 3,
  input: z.object({ full: z.string(), lang: z.string() }),
  upgrade: {
    1: (old) => ({ full: (old as { name: string }).name }),
    2: (old) => ({ ...(old as object), lang: "en" }),
  },
  handler: () => {},
});

Deno.test("decodeInput() applies the upgrades in turn from the stored version, then parses", () => {
  assert.deepEqual(decodeInput(v3, { name: "Ada" }, 1), { full: "Ada", lang: "en" });
  assert.deepEqual(decodeInput(v3, { full: "Ada" }, 2), { full: "Ada", lang: "en" });
  assert.deepEqual(decodeInput(v3, { full: "Ada", lang: "fr" }, 3), { full: "Ada", lang: "fr" });
});

Deno.test("decodeInput() refuses what it cannot run, saying why", () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return (err as { code: string }).code;
    }
    return null;
  };
  assert.equal(code(() => decodeInput(v3, { full: 1 }, 3)), "INVALID_INPUT");
  assert.equal(code(() => upgradeInput(v3, {}, 4)), "INPUT_VERSION_AHEAD");
  const gap = defineActor({
    name: "v.gap",
    version: 3,
    input: z.object({}),
    upgrade: { 2: (o) => o },
    handler: () => {},
  });
  assert.equal(code(() => upgradeInput(gap, {}, 1)), "INPUT_VERSION_UNKNOWN");
  const throwing = defineActor({
    name: "v.throw",
    version: 2,
    input: z.object({}),
    upgrade: {
      1: () => {
        throw new Error("no");
      },
    },
    handler: () => {},
  });
  assert.equal(code(() => upgradeInput(throwing, {}, 1)), "INPUT_VERSION_UNKNOWN");
});
