import assert from "node:assert/strict";
import { generateKeyText, localKeys, parseKeys, SecretBox, SecretError } from "./secrets.ts";

const code = (e: unknown) => (e as SecretError).code;

Deno.test("SecretBox seals with a random IV and opens only in the same context", async () => {
  const box = new SecretBox(parseKeys(generateKeyText("a")));
  const one = await box.seal("tok-123", "source:t1:s1");
  const two = await box.seal("tok-123", "source:t1:s1");
  assert.notEqual(one, two, "each value has its own IV");
  assert.match(one, /^v1\.a\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
  assert(!one.includes("tok-123"));
  assert.equal(await box.open(one, "source:t1:s1"), "tok-123");
  await assert.rejects(() => box.open(one, "source:t2:s1"), (e) => code(e) === "TAMPERED");
  const flipped = one.slice(0, -2) + (one.at(-2) === "A" ? "B" : "A") + one.at(-1);
  await assert.rejects(() => box.open(flipped, "source:t1:s1"), (e) => code(e) === "TAMPERED");
  for (const bad of ["", "v2.a.x.y", "v1.a.!!.y", "v1.a.AAAA.AAAA"]) {
    await assert.rejects(() => box.open(bad, "source:t1:s1"), (e) => code(e) === "MALFORMED");
  }
});

Deno.test("SecretBox rotates: new key seals, old key still opens, reseal moves values", async () => {
  const oldKey = generateKeyText("old");
  const before = new SecretBox(parseKeys(oldKey));
  const sealed = await before.seal("s3cret", "ctx");
  const after = new SecretBox(parseKeys(`${generateKeyText("new")},${oldKey}`));
  assert.equal(after.currentKeyId, "new");
  assert.equal(await after.open(sealed, "ctx"), "s3cret");
  assert(after.isStale(sealed));
  const moved = await after.reseal(sealed, "ctx");
  assert(!after.isStale(moved) && moved.startsWith("v1.new."));
  assert.equal(await after.reseal(moved, "ctx"), moved, "a current value is kept");
  const dropped = new SecretBox(parseKeys(generateKeyText("new2")));
  await assert.rejects(() => dropped.open(sealed, "ctx"), (e) => code(e) === "UNKNOWN_KEY");
});

Deno.test("parseKeys names what is wrong without echoing key material", () => {
  const cases: [string, RegExp][] = [
    ["", /no key/],
    ["nocolon", /id:base64/],
    ["bad id:AAAA", /id:base64/],
    ["a:%%%", /not base64/],
    ["a:AAAA", /32 bytes, got 3/],
    [`a:${btoa("x".repeat(32))},a:${btoa("y".repeat(32))}`, /distinct/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseKeys(text), (e: SecretError) => {
      return e.code === "BAD_KEYS" && message.test(e.message) && !e.message.includes("%%%");
    }, text);
  }
});

Deno.test("localKeys makes one private key file and reuses it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const [first, again] = await Promise.all([localKeys(dir), localKeys(dir)]);
    assert.deepEqual(first, again, "concurrent first uses agree on one key");
    assert.deepEqual(await localKeys(dir), first);
    assert.equal((await Deno.stat(`${dir}/secret.key`)).mode! & 0o777, 0o600);
    const box = new SecretBox(first);
    const sealed = await box.seal("x", "c");
    assert.equal(await new SecretBox(await localKeys(dir)).open(sealed, "c"), "x");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
