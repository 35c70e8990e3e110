import assert from "node:assert/strict";
import { join } from "node:path";
import { backupDataDir, restoreDataDir, RestoreError } from "./backup.ts";
import { openPglite } from "@troupe/runtime/pglite";
import { readTar, TarError, writeTar } from "./tar.ts";

/** A stream that hands out `bytes` in pieces of random sizes. */
function pieces(bytes: Uint8Array, seed = 7): ReadableStream<Uint8Array> {
  let at = 0;
  let s = seed;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      s = (s * 1103515245 + 12345) % 2 ** 31;
      const n = 1 + (s % 1500);
      c.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

Deno.test("tar: what is written reads back, names long and short, any chunking", async () => {
  const files = [
    { name: "a.txt", data: new TextEncoder().encode("hello") },
    { name: "empty", data: new Uint8Array(0) },
    { name: "exactly-512", data: new Uint8Array(512).fill(7) },
    {
      name: `${"d".repeat(120)}/${"f".repeat(90)}`,
      data: new Uint8Array(70_000).map((_, i) => (i * 31) % 251),
    },
  ];
  const archive = new Uint8Array(
    await new Response(writeTar(files.map((f) => ({
      name: f.name,
      size: f.data.length,
      body: () => new Blob([f.data]).stream(),
    })))).arrayBuffer(),
  );
  assert.equal(archive.length % 512, 0);
  const read: { name: string; data: Uint8Array }[] = [];
  for await (const e of readTar(pieces(archive))) {
    read.push({ name: e.name, data: new Uint8Array(await new Response(e.body).arrayBuffer()) });
  }
  assert.deepEqual(read.map((r) => r.name), files.map((f) => f.name));
  for (const [i, r] of read.entries()) assert.deepEqual(r.data, files[i]!.data, r.name);
  // A reader may skip a body: the next entry still comes right.
  const names = [];
  for await (const e of readTar(pieces(archive, 3))) names.push(e.name);
  assert.deepEqual(names, files.map((f) => f.name));
  // `tar` itself reads it.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "x.tar"), archive);
    const out = await new Deno.Command("tar", { args: ["-tf", "x.tar"], cwd: dir }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.deepEqual(
      new TextDecoder().decode(out.stdout).trim().split("\n"),
      files.map((f) => f.name),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: a file whose size changes, a bad checksum, a path outside the root are refused", async () => {
  const lying = writeTar([{ name: "x", size: 3, body: () => new Blob(["four"]).stream() }]);
  await assert.rejects(() => new Response(lying).arrayBuffer(), TarError);
  const ok = new Uint8Array(
    await new Response(
      writeTar([{ name: "../etc/passwd", size: 1, body: () => new Blob(["x"]).stream() }]),
    )
      .arrayBuffer(),
  );
  await assert.rejects(async () => {
    for await (const _ of readTar(pieces(ok))) { /* read */ }
  }, /outside the archive's root/);
  ok[0] = ok[0]! ^ 1;
  await assert.rejects(async () => {
    for await (const _ of readTar(pieces(ok))) { /* read */ }
  }, /checksum/);
  await assert.rejects(async () => {
    for await (const _ of readTar(pieces(ok.subarray(0, 512 + 100)))) { /* read */ }
  }, TarError);
});

for (const thread of ["main", "worker"] as const) {
  Deno.test({
    name:
      `backup (PGlite in the ${thread} thread): consistent while writes go on; restore brings back the database, files and keys`,
  }, async () => {
    const root = await Deno.makeTempDir();
    const dataDir = join(root, "data");
    const db = await openPglite(join(dataDir, "pglite"), { thread });
    let writing = true;
    try {
      // Each transaction adds one row to each table: a consistent copy has equal counts.
      await db.query("CREATE TABLE a (n int)");
      await db.query("CREATE TABLE b (n int)");
      await Deno.mkdir(join(dataDir, "blobs", "ab"), { recursive: true });
      await Deno.mkdir(join(dataDir, "blobs", "tmp"), { recursive: true });
      await Deno.writeTextFile(join(dataDir, "blobs", "ab", "abcd"), "file bytes");
      await Deno.writeTextFile(join(dataDir, "blobs", "tmp", "partial"), "half an upload");
      await Deno.writeTextFile(join(dataDir, "secret.key"), "local:key\n");
      const writer = (async () => {
        for (let n = 0; writing; n++) {
          // PGlite answers without a turn of the event loop: yield, as requests would.
          await new Promise((r) => setTimeout(r, 0));
          await db.transaction(async (tx) => {
            await tx.query("INSERT INTO a VALUES ($1)", [n]);
            await tx.query("INSERT INTO b VALUES ($1)", [n]);
          });
        }
      })();
      await new Promise((r) => setTimeout(r, 200));
      const { stream, manifest } = await backupDataDir(dataDir, db.hold!.bind(db));
      const file = join(root, "backup.tar.gz");
      await stream.pipeTo((await Deno.open(file, { write: true, create: true })).writable);
      writing = false;
      await writer;
      assert(manifest.files > 10 && manifest.bytes > 1_000_000, JSON.stringify(manifest));
      assert.deepEqual(
        await Array.fromAsync(Deno.readDir(join(dataDir, "backups"))),
        [],
        "the database copy is removed once streamed",
      );
      const during = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM a"))[0]!.n;

      await assert.rejects(
        async () => await restoreDataDir(dataDir, (await Deno.open(file)).readable),
        (e: Error) => e instanceof RestoreError && /in use by process/.test(e.message),
      );
      await db.close();

      const restored = await restoreDataDir(dataDir, (await Deno.open(file)).readable);
      assert.ok(restored.previous, "the old directory is kept aside");
      assert.equal(await Deno.readTextFile(join(dataDir, "blobs", "ab", "abcd")), "file bytes");
      assert.equal(await Deno.readTextFile(join(dataDir, "secret.key")), "local:key\n");
      await assert.rejects(
        () => Deno.stat(join(dataDir, "blobs", "tmp", "partial")),
        Deno.errors.NotFound,
      );
      const again = await openPglite(join(dataDir, "pglite"), { thread });
      try {
        const [counts] = await again.query<{ a: number; b: number }>(
          "SELECT (SELECT count(*)::int FROM a) AS a, (SELECT count(*)::int FROM b) AS b",
        );
        assert.equal(counts!.a, counts!.b, "no transaction is half in the copy");
        assert(counts!.a > 0 && counts!.a <= during, `${counts!.a} rows of ${during}`);
      } finally {
        await again.close();
      }
    } finally {
      writing = false;
      await db.close().catch(() => {});
      await Deno.remove(root, { recursive: true });
    }
  });
}

Deno.test({
  name: "restore refuses what is not a whole Troupe backup, leaving the directory",
}, async () => {
  const root = await Deno.makeTempDir();
  const dataDir = join(root, "data");
  await Deno.mkdir(dataDir);
  await Deno.writeTextFile(join(dataDir, "marker"), "keep me");
  const gz = (files: { name: string; text: string }[]) =>
    writeTar(files.map((f) => {
      const data = new TextEncoder().encode(f.text);
      return { name: f.name, size: data.length, body: () => new Blob([data]).stream() };
    })).pipeThrough(new CompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>);
  const manifest = (files: number, bytes: number) =>
    JSON.stringify({ format: "troupe-backup", version: 1, createdAt: "x", files, bytes });
  try {
    const cases: [ReadableStream<Uint8Array>, RegExp][] = [
      [new Blob(["not gzip"]).stream(), /could not be read/],
      [gz([{ name: "pglite/PG_VERSION", text: "17" }]), /manifest/],
      [
        gz([{ name: "troupe-backup.json", text: manifest(2, 2) }, {
          name: "pglite/PG_VERSION",
          text: "17",
        }]),
        /incomplete/,
      ],
      [
        gz([{ name: "troupe-backup.json", text: manifest(1, 1) }, { name: "blobs/x", text: "y" }]),
        /no database/,
      ],
      [
        gz([{ name: "troupe-backup.json", text: manifest(1, 1) }, { name: "etc/x", text: "y" }]),
        /not a file a backup holds/,
      ],
      [gz([{ name: "troupe-backup.json", text: "{}" }]), /not a Troupe backup/],
    ];
    for (const [stream, message] of cases) {
      await assert.rejects(() => restoreDataDir(dataDir, stream), (e: Error) => {
        return e instanceof RestoreError && message.test(e.message);
      }, String(message));
      assert.equal(await Deno.readTextFile(join(dataDir, "marker")), "keep me");
    }
    assert.deepEqual((await Array.fromAsync(Deno.readDir(root))).map((e) => e.name), ["data"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
