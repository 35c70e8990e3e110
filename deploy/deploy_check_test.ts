import assert from "node:assert/strict";
import {
  denoBinary,
  DEPLOY_DENO_VERSION,
  keyedPathViolations,
  moduleInfo,
  START_PATH,
  startPathViolations,
  staticViolations,
} from "./deploy_check.ts";

const here = new URL(".", import.meta.url).pathname;

/** An entry file next to this one (so the import map applies), removed after `fn`. */
async function withEntry(source: string, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ dir: here, prefix: ".deploy_check_", suffix: ".ts" });
  try {
    await Deno.writeTextFile(path, source);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("deploy:check: the edge entry reaches no embedded-only module statically", async () => {
  const info = await moduleInfo(`${here}edge.ts`);
  assert.ok(info.modules.length > 50, "the graph was read");
  assert.deepEqual(staticViolations(info), []);
});

Deno.test("deploy:check: a static import of PGlite or worker threads fails, with its chain", async () => {
  await withEntry(
    `import "./edge.ts";\nimport "../actors/runtime/drivers/pglite_thread.ts";\nimport "node:worker_threads";\n`,
    async (path) => {
      const violations = staticViolations(await moduleInfo(path));
      const pglite = violations.find((v) => v.why.startsWith("PGlite"));
      assert.ok(pglite, JSON.stringify(violations));
      assert.match(pglite.chain.join(" "), /drivers\/pglite_thread\.ts .*pglite/);
      assert.ok(violations.some((v) => v.module === "node:worker_threads"));
    },
  );
});

Deno.test("deploy:check: the same modules behind a dynamic import pass", async () => {
  await withEntry(
    `import "./edge.ts";\nexport const load = () => [import("@troupe/runtime/pglite"), import("node:worker_threads")];\n`,
    async (path) => {
      assert.deepEqual(staticViolations(await moduleInfo(path)), []);
    },
  );
});

Deno.test("deploy:check: the edge entry's first modules hold no npm package but hono", async () => {
  assert.deepEqual(await startPathViolations(`${here}edge.ts`), []);
  // main.ts is what the start keeps off that path.
  const full = await startPathViolations(`${here}../main.ts`);
  for (const name of ["zod", "@hono/zod-openapi", "@upstash/redis"]) {
    assert.ok(full.some((v) => v.module.includes(name)), `main.ts reaches ${name}`);
  }
});

Deno.test("deploy:check: zod imported by an entry's own module fails the start path, hono passes", async () => {
  await withEntry(
    `import "./edge.ts";\nimport "hono/cors";\nimport "./config.ts";\nimport { z } from "zod";\nexport const s = z.string();\n`,
    async (path) => {
      const violations = staticViolations(await moduleInfo(path), START_PATH);
      assert.deepEqual(violations.map((v) => v.module), ["npm:/zod@4.6.7"]);
      assert.match(violations[0]!.chain[0]!, /\.deploy_check_/);
    },
  );
});

Deno.test("deploy:check: the app a keyed request loads holds no route group loaded on use", async () => {
  assert.deepEqual(await keyedPathViolations(`${here}../main.ts`), []);
  // routes/app.ts importing a group statically fails, naming the chain.
  await withEntry(
    `import "../main.ts";\nimport "../routes/datasets.ts";\nimport "@opentelemetry/api";\n`,
    async (path) => {
      const found = await keyedPathViolations(path);
      assert.ok(found.some((v) => v.module.endsWith("/routes/datasets.ts")));
      assert.ok(found.some((v) => v.module.includes("@opentelemetry/api")));
    },
  );
});

Deno.test("deploy:check: the edge entry type-checks on Deploy's Deno version", async () => {
  const deno = await denoBinary(DEPLOY_DENO_VERSION);
  const { success, stderr } = await new Deno.Command(deno, {
    args: ["check", "--frozen", `${here}edge.ts`],
    cwd: `${here}..`,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr).slice(0, 4000));
});
