/**
 * The modules (`actors/datasets/`, `actors/courses/`, `routes/`) should reach the runtime
 * through its package entries (`@troupe/runtime`, `@troupe/runtime/hono`, ...), not through its
 * files. The imports that do so today are listed in `tests/runtime_deep_imports.txt`; this test
 * fails on any deep import not in that list, so the count only goes down. Entries that no
 * longer occur are reported, to be deleted from the list.
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const MODULES = ["actors/datasets", "actors/courses", "routes"];
const RUNTIME = "actors/runtime/";
/** Paths outside the package that re-export its files. */
const SHIMS = new Set([
  "actors/transports/in_process.ts",
  "actors/transports/qstash.ts",
  "actors/transports/table_queue.ts",
  "db/neon.ts",
  "db/pglite.ts",
  "db/postgres.ts",
]);
const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g;

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(join(root, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* tsFiles(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

/** `file -> target` for every import from a module into the runtime's files. */
export async function deepImports(): Promise<string[]> {
  const found = new Set<string>();
  for (const dir of MODULES) {
    for await (const file of tsFiles(dir)) {
      const text = await Deno.readTextFile(join(root, file));
      for (const [, spec] of text.matchAll(SPECIFIER)) {
        if (!spec!.startsWith(".")) continue;
        const target = relative(root, join(root, dirname(file), spec!));
        const inRuntime = target.startsWith(RUNTIME) && target !== `${RUNTIME}mod.ts`;
        if (inRuntime || SHIMS.has(target)) found.add(`${file} -> ${target}`);
      }
    }
  }
  return [...found].sort();
}

Deno.test("no module gains a deep import into the runtime package", async () => {
  const allowed = new Set(
    (await Deno.readTextFile(new URL("./runtime_deep_imports.txt", import.meta.url)))
      .split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")),
  );
  const found = await deepImports();
  const added = found.filter((i) => !allowed.has(i));
  const gone = [...allowed].filter((i) => !found.includes(i));
  console.log(`deep imports into the runtime: ${found.length} (allowed: ${allowed.size})`);
  if (gone.length) console.log(`no longer used, delete from the list:\n  ${gone.join("\n  ")}`);
  assert.deepEqual(added, [], "import these through @troupe/runtime instead");
});

if (import.meta.main) console.log((await deepImports()).join("\n"));
