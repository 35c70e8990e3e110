/**
 * Everything outside the runtime package (the workloads in `actors/*`, the HTTP API in
 * `routes/`, `db/`, `deploy/`, `bench/`, `main.ts`, the tests) is a user of it: it imports the
 * runtime through the package entries listed in `actors/runtime/deno.json` (`@troupe/runtime`,
 * `@troupe/runtime/workers`, `/pglite`, `/postgres`, `/neon`, `/hono`, `/testing`,
 * `/transports/qstash`), never a file under `actors/runtime/` by its path. A symbol a user needs
 * is exported from the package, so that its files can change without breaking the users.
 *
 * The exceptions: `tests/contract/` is the runtime's own contract suite and may import the
 * SQL steps under `actors/runtime/sql/` that it drives directly; so may `bench/queue_floor.ts`,
 * the floor of the table queue (those steps in a loop without the runtime).
 *
 * `deno task test` runs every `*_test.ts`, this one included, and `deno task ok` runs that.
 * `deno run -A tests/runtime_boundary_test.ts` lists the offending imports.
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const RUNTIME = "actors/runtime/";
/** The package itself, and this file (its examples are deep imports). */
const SKIP = new Set(["node_modules", "actors/runtime", "tests/runtime_boundary_test.ts"]);
/** Imports a file may make by path: `[file prefix, target prefix]`. */
const EXCEPTIONS: [string, string][] = [
  ["tests/contract/", `${RUNTIME}sql/`],
  ["bench/queue_floor.ts", `${RUNTIME}sql/`],
];
const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g;

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(join(root, dir))) {
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.name.startsWith(".") || SKIP.has(path)) continue;
    if (entry.isDirectory) yield* tsFiles(path);
    else if (/\.tsx?$/.test(entry.name)) yield path;
  }
}

/** `file -> target` for each import in `text` (the source of `file`) of a runtime file. */
export function deepImportsIn(file: string, text: string): string[] {
  const found: string[] = [];
  for (const [, spec] of text.matchAll(SPECIFIER)) {
    if (!spec!.startsWith(".")) continue;
    const target = relative(root, join(root, dirname(file), spec!));
    if (!target.startsWith(RUNTIME)) continue;
    if (EXCEPTIONS.some(([f, t]) => file.startsWith(f) && target.startsWith(t))) continue;
    found.push(`${file} -> ${target}`);
  }
  return found;
}

/** Every import from outside the package into one of its files. */
export async function deepImports(): Promise<string[]> {
  const found: string[] = [];
  for await (const file of tsFiles("")) {
    found.push(...deepImportsIn(file, await Deno.readTextFile(join(root, file))));
  }
  return found.sort();
}

Deno.test("nothing outside the runtime package imports its files by path", async () => {
  assert.deepEqual(await deepImports(), [], "import these through @troupe/runtime instead");
});

Deno.test("a path into the runtime is found, the package's entries and the exception are not", () => {
  const text = [
    `import { Runtime } from "../actors/runtime/runtime.ts";`,
    `import type { SqlDatabase } from "../actors/runtime/mod.ts";`,
    `const pool = await import("../actors/runtime/worker_pool.ts");`,
    `import { Runtime } from "@troupe/runtime";`,
    `import { cores } from "@troupe/runtime/workers";`,
    `import { TenantStore } from "../db/tenants.ts";`,
  ].join("\n");
  assert.deepEqual(deepImportsIn("routes/x.ts", text), [
    "routes/x.ts -> actors/runtime/runtime.ts",
    "routes/x.ts -> actors/runtime/mod.ts",
    "routes/x.ts -> actors/runtime/worker_pool.ts",
  ]);
  const sql = `import { claimJobs } from "../../actors/runtime/sql/claim_jobs.ts";`;
  assert.deepEqual(deepImportsIn("tests/contract/x_test.ts", sql), []);
  assert.deepEqual(deepImportsIn("tests/x_test.ts", sql.replace("../../", "../")), [
    "tests/x_test.ts -> actors/runtime/sql/claim_jobs.ts",
  ]);
});

if (import.meta.main) console.log((await deepImports()).join("\n"));
