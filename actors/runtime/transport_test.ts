/**
 * The core runs every transport through the port alone (`transport.ts`): no file of the core
 * (the runtime's top-level files and `sql/`) names a transport, imports one, or branches on
 * which kind it holds. The exceptions, each a composition and not a decision: `mod.ts`
 * re-exports the transports, and `testing.ts` builds its embedded world on the table queue.
 */
import assert from "node:assert/strict";

const EXCEPTIONS = new Set(["mod.ts", "testing.ts"]);
const KIND: [RegExp, string][] = [
  [/from\s+["']\.\.?\/(?:\.\.\/)?transports\//, "imports a transport"],
  [/\b(?:TableQueue|InProcess|QStash)Transport\b/, "names a transport"],
  [/\btransport\.mode\b|\bmode\s*[!=]==?\s*["'](?:push|pull)["']/, "branches on a mode"],
  [/\btransport\.name\s*[!=]==?/, "branches on a name"],
  [/\binstanceof\s+\w*Transport\b/, "branches on a class"],
];

/** What in `text` tells a transport's kind apart, as `why: line`. */
export function kindChecks(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split("\n")) {
    if (/^\s*(\*|\/\/)/.test(line)) continue; // comments and docs may name them
    for (const [re, why] of KIND) if (re.test(line)) found.push(`${why}: ${line.trim()}`);
  }
  return found;
}

async function coreFiles(): Promise<string[]> {
  const files: string[] = [];
  for (const dir of ["", "sql/"]) {
    for await (const e of Deno.readDir(new URL(`./${dir}`, import.meta.url))) {
      const name = `${dir}${e.name}`;
      if (!e.isFile || !name.endsWith(".ts") || name.endsWith("_test.ts")) continue;
      if (!EXCEPTIONS.has(name)) files.push(name);
    }
  }
  return files.sort();
}

Deno.test("no core file names a transport or branches on its kind", async () => {
  const files = await coreFiles();
  assert.ok(files.includes("runtime.ts") && files.includes("sql/insert_jobs.ts"));
  const found: string[] = [];
  for (const f of files) {
    const text = await Deno.readTextFile(new URL(`./${f}`, import.meta.url));
    found.push(...kindChecks(text).map((c) => `${f}: ${c}`));
  }
  assert.deepEqual(found, [], "use the transport's port (inTransaction, afterCommit, start)");
});

Deno.test("kindChecks() finds each way of telling transports apart, not the port's use", () => {
  const text = [
    `import { QStashTransport } from "./transports/qstash.ts";`,
    `if (this.transport.mode === "push") relay();`,
    `const push = mode === "pull";`,
    `if (transport.name === "qstash") return;`,
    `if (t instanceof InProcessTransport) return;`,
    ` * The table queue (TableQueueTransport) wakes its loop.`,
    `if (this.transport.inTransaction.outbox) relay();`,
    `await transport.afterCommit(messages);`,
  ].join("\n");
  assert.deepEqual(kindChecks(text).map((c) => c.split(":")[0]), [
    "imports a transport",
    "names a transport",
    "branches on a mode",
    "branches on a mode",
    "branches on a name",
    "names a transport",
    "branches on a class",
  ]);
});
