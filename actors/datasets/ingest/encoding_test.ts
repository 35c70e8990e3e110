import assert from "node:assert/strict";
import {
  bomLength,
  decodeStream,
  decodeText,
  detectEncoding,
  type Encoding,
  findInvalidUtf16,
  findInvalidUtf8,
  sniffEncoding,
} from "./encoding.ts";
import { EncodingError } from "./errors.ts";
import { prng, streamOf, utf8 } from "./test_util.ts";

async function decodeAll(
  bytes: Uint8Array,
  encoding: Encoding,
  piece: number,
  fatal = false,
): Promise<string> {
  const parts: string[] = [];
  const stream = streamOf(bytes, piece).pipeThrough(decodeStream(encoding, { fatal }));
  for await (const s of stream) parts.push(s);
  return parts.join("");
}

function utf16(s: string, littleEndian: boolean, bom = true): Uint8Array {
  const units = (bom ? "\ufeff" : "") + s;
  const out = new Uint8Array(units.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < units.length; i++) view.setUint16(i * 2, units.charCodeAt(i), littleEndian);
  return out;
}

const SAMPLE = 'id,name\n1,"Zoë, 東京 😀"\r\n2,plain\n';

Deno.test("detectEncoding reads the three BOMs and falls back otherwise", () => {
  assert.deepEqual(detectEncoding(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61)), {
    encoding: "utf-8",
    bomLength: 3,
  });
  assert.deepEqual(detectEncoding(Uint8Array.of(0xff, 0xfe, 0x61, 0)), {
    encoding: "utf-16le",
    bomLength: 2,
  });
  assert.deepEqual(detectEncoding(Uint8Array.of(0xfe, 0xff, 0, 0x61)), {
    encoding: "utf-16be",
    bomLength: 2,
  });
  assert.deepEqual(detectEncoding(utf8("abc")), { encoding: "utf-8", bomLength: 0 });
  assert.deepEqual(detectEncoding(new Uint8Array(0), "latin1"), {
    encoding: "latin1",
    bomLength: 0,
  });
  assert.equal(bomLength("utf-16le", Uint8Array.of(0xfe, 0xff)), 0);
  assert.equal(bomLength("latin1", Uint8Array.of(0xef, 0xbb, 0xbf)), 0);
});

Deno.test("decodeStream strips the BOM and survives any piece size (UTF-8, UTF-16LE/BE)", async () => {
  const cases: [Encoding, Uint8Array][] = [
    ["utf-8", utf8("\ufeff" + SAMPLE)],
    ["utf-8", utf8(SAMPLE)],
    ["utf-16le", utf16(SAMPLE, true)],
    ["utf-16be", utf16(SAMPLE, false)],
  ];
  for (const [encoding, bytes] of cases) {
    for (const piece of [1, 2, 3, 5, 7, 1024]) {
      assert.equal(await decodeAll(bytes, encoding, piece, true), SAMPLE, `${encoding}/${piece}`);
    }
  }
});

Deno.test("Latin-1 is ISO-8859-1: é is one byte, 0x80 is U+0080 (not windows-1252)", async () => {
  const bytes = Uint8Array.of(0x63, 0x61, 0x66, 0xe9, 0x2c, 0x80, 0xff);
  const expected = "café,\u0080ÿ";
  assert.equal(await decodeAll(bytes, "latin1", 2), expected);
  assert.equal(decodeText(bytes, "latin1"), expected);
});

Deno.test("invalid UTF-8 without fatal decodes to U+FFFD", async () => {
  const bytes = Uint8Array.of(0x61, 0xff, 0x62);
  assert.equal(await decodeAll(bytes, "utf-8", 1), "a\ufffdb");
});

Deno.test("fatal UTF-8: EncodingError at the exact byte offset, whatever the piece size", async () => {
  const rand = prng(7);
  const base = utf8("héllo wörld, 東京 and 😀 ".repeat(40));
  for (let trial = 0; trial < 40; trial++) {
    // Insert a stray continuation byte at a character boundary (an ASCII position).
    let at = Math.floor(rand() * base.length);
    while (base[at]! >= 0x80) at++;
    const bad = new Uint8Array(base.length + 1);
    bad.set(base.subarray(0, at), 0);
    bad[at] = 0x80;
    bad.set(base.subarray(at), at + 1);
    const piece = 1 + Math.floor(rand() * 50);
    const err = await decodeAll(bad, "utf-8", piece, true).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof EncodingError, `trial ${trial}`);
    assert.equal(err.offset, at, `trial ${trial} piece ${piece}`);
  }
});

Deno.test("fatal UTF-8: a truncated sequence at the end reports its lead byte", async () => {
  const bytes = utf8("ab東");
  const cut = bytes.subarray(0, bytes.length - 1); // lead byte at offset 2
  for (const piece of [1, 2, 100]) {
    await assert.rejects(decodeAll(cut, "utf-8", piece, true), (e: unknown) => {
      assert.ok(e instanceof EncodingError);
      assert.equal(e.offset, 2);
      return true;
    });
  }
});

Deno.test("findInvalidUtf8 follows the WHATWG rules", () => {
  assert.equal(findInvalidUtf8(utf8("plain ascii é 😀")), -1);
  assert.equal(findInvalidUtf8(Uint8Array.of(0x61, 0xc0, 0x80)), 1); // overlong
  assert.equal(findInvalidUtf8(Uint8Array.of(0x61, 0xed, 0xa0, 0x80)), 1); // surrogate
  assert.equal(findInvalidUtf8(Uint8Array.of(0xf5, 0x80, 0x80, 0x80)), 0); // > U+10FFFF
  assert.equal(findInvalidUtf8(Uint8Array.of(0xe0, 0x80, 0x80)), 0); // overlong 3-byte
  assert.equal(findInvalidUtf8(Uint8Array.of(0x61, 0x62, 0xe6, 0x9d)), 2); // truncated
});

Deno.test("fatal UTF-16: lone surrogate and odd byte are located", async () => {
  const lone = utf16("ab\ud800c", true); // BOM, a, b, then the surrogate at byte 6
  assert.equal(findInvalidUtf16(lone, true), 6);
  for (const piece of [1, 3, 8]) {
    await assert.rejects(decodeAll(lone, "utf-16le", piece, true), (e: unknown) => {
      assert.ok(e instanceof EncodingError);
      assert.equal(e.offset, 6);
      return true;
    });
  }
  const odd = Uint8Array.of(0xff, 0xfe, 0x61, 0x00, 0x62);
  await assert.rejects(decodeAll(odd, "utf-16le", 2, true), (e: unknown) => {
    assert.ok(e instanceof EncodingError);
    assert.equal(e.offset, 4);
    return true;
  });
});

Deno.test("decodeText locates invalid bytes relative to the file", () => {
  assert.throws(
    () => decodeText(Uint8Array.of(0x61, 0x62, 0xff), "utf-8", { fatal: true, fileOffset: 100 }),
    (e: unknown) => e instanceof EncodingError && e.offset === 102,
  );
  assert.equal(decodeText(utf8("\ufeffx"), "utf-8", { stripBom: true }), "x");
  assert.equal(decodeText(utf8("\ufeffx"), "utf-8"), "\ufeffx");
});

Deno.test("sniffEncoding: a BOM, else valid UTF-8, else Windows-1252", () => {
  const latin1 = Uint8Array.of(...utf8("name\nJ"), 0xfc, ...utf8("rgen,Malm"), 0xf6, 0x0a);
  assert.equal(sniffEncoding(latin1, true), "windows-1252");
  assert.equal(sniffEncoding(utf8("name\nJürgen,Malmö\n"), true), "utf-8");
  assert.equal(sniffEncoding(utf8("plain ascii\n"), true), "utf-8");
  assert.equal(sniffEncoding(Uint8Array.of(0xef, 0xbb, 0xbf, 0xfc), true), "utf-8");
  assert.equal(sniffEncoding(Uint8Array.of(0xff, 0xfe, 0x41, 0x00), true), "utf-16le");
  // A sample cut inside a character: valid when more of the file follows, not at its end.
  const cut = utf8("ab東").subarray(0, 4);
  assert.equal(sniffEncoding(cut, false), "utf-8");
  assert.equal(sniffEncoding(cut, true), "windows-1252");
  // Windows-1252 reads every byte to a character, never to U+FFFD.
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const text = decodeText(all, "windows-1252");
  assert.equal(text.length, 256);
  assert.ok(!text.includes("\ufffd"));
  assert.equal(text[0x80], "€");
  assert.equal(decodeText(latin1, "windows-1252"), "name\nJürgen,Malmö\n");
});
