/**
 * `deno task deploy:check [entry]`: the edge entry (default `deploy/edge.ts`) checked offline
 * for Deno Deploy:
 * 1. its static module graph (`deno info --json`, dynamic imports not followed) reaches no
 *    embedded-only module: PGlite, `node:worker_threads`, the test stand-ins, the benchmarks;
 * 2. its first modules, the ones an instance evaluates before its first answer (the entry's
 *    static graph, and that of the front it answers with, {@link START_ROOTS}), hold no npm
 *    package but hono: the database driver, the cache's client and the whole app load by
 *    dynamic import (deploy/start.ts), so a cold start neither fetches nor evaluates zod, the
 *    OpenAPI schemas, drizzle or the workloads before its first health answer;
 * 3. the app the first keyed request loads (`main.ts`'s static graph, {@link KEYED_ROOT}) holds
 *    none of the modules loaded on first use ({@link KEYED_PATH}): the route groups but health,
 *    jobs and retry (routes/app.ts mounts them through routes/lazy.ts), the console, the docs,
 *    QStash's webhook routes, OpenTelemetry (loaded when a provider is registered) and the S3
 *    client (loaded when a bucket is configured);
 * 4. it type-checks on Deploy's Deno version ({@link DEPLOY_DENO_VERSION}), installed from npm
 *    into a cache directory on first use (or the binary named by `DEPLOY_DENO`).
 * Exit code 1 when either fails, each offending import chain printed.
 */
import { join } from "node:path";

/** The Deno version Deno Deploy runs (its runtime is pinned by the platform). */
export const DEPLOY_DENO_VERSION = "2.5.0";

/** What an edge instance must not load at start, and why. */
export const EMBEDDED_ONLY: readonly { test: (specifier: string) => boolean; why: string }[] = [
  { test: (s) => s.startsWith("npm:/@electric-sql/pglite"), why: "PGlite (embedded database)" },
  { test: (s) => s === "node:worker_threads", why: "worker threads (embedded heap limits)" },
  { test: (s) => /\/tests\/fixtures\//.test(s), why: "a test stand-in" },
  { test: (s) => /^file:.*\/bench\//.test(s), why: "a benchmark tool" },
];

/** The npm packages the first modules may hold: the front's HTTP router. */
export const START_PACKAGES: readonly string[] = ["hono"];

/** What the edge entry answers its first health check with, beside its own modules. */
export const START_ROOTS: readonly string[] = ["routes/front.ts"];

/** What the first keyed request loads: the whole app, composed (deploy/start.ts imports it). */
export const KEYED_ROOT = "main.ts";

/** The route groups routes/app.ts loads on their first request. */
const LAZY_ROUTES =
  /\/routes\/(console\/|(audit|backup|cache|callbacks|courses|datasets|docs|keys|operations|qstash|schedules|sources|statements|telemetry|tenants|uploads|usage)\.tsx?$)/;

/** The npm packages loaded on first use only (a route group's, or an optional adapter's). */
const LAZY_PACKAGES = ["swagger-ui-dist", "@opentelemetry/api", "aws4fetch"];

/** A module of the keyed path that loads on first use. */
export const KEYED_PATH: readonly { test: (specifier: string) => boolean; why: string }[] = [
  { test: (s) => /^file:/.test(s) && LAZY_ROUTES.test(s), why: "a route group loaded on use" },
  {
    test: (s) => LAZY_PACKAGES.includes(/^npm:\/?((?:@[^/@]+\/)?[^/@]+)/.exec(s)?.[1] ?? ""),
    why: "a package loaded on use",
  },
];

/** A module of the start path that is an npm package other than {@link START_PACKAGES}. */
export const START_PATH: readonly { test: (specifier: string) => boolean; why: string }[] = [{
  test: (s) => {
    const name = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)/.exec(s)?.[1];
    return name !== undefined && !START_PACKAGES.includes(name);
  },
  why: "an npm package before the first answer",
}];

interface InfoDependency {
  specifier: string;
  code?: { specifier?: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}
/** The part of `deno info --json` the rule reads. */
export interface ModuleInfo {
  roots: string[];
  modules: InfoModule[];
  redirects?: Record<string, string>;
}

/** A forbidden module statically reachable from the roots, with the import chain to it. */
export interface Violation {
  module: string;
  why: string;
  chain: string[];
}

/**
 * The modules matching `rules` (default: the embedded-only ones) the static graph reaches
 * (breadth-first: shortest chains).
 */
export function staticViolations(
  info: ModuleInfo,
  rules: readonly { test: (specifier: string) => boolean; why: string }[] = EMBEDDED_ONLY,
): Violation[] {
  const byUrl = new Map(info.modules.map((m) => [m.specifier, m]));
  const resolve = (s: string) => info.redirects?.[s] ?? s;
  const parent = new Map<string, string | null>();
  const queue: string[] = [];
  for (const root of info.roots) {
    const r = resolve(root);
    if (!parent.has(r)) {
      parent.set(r, null);
      queue.push(r);
    }
  }
  const violations: Violation[] = [];
  while (queue.length) {
    const at = queue.shift()!;
    const rule = rules.find((r) => r.test(at));
    if (rule) {
      const chain = [at];
      for (let p = parent.get(at); p; p = parent.get(p)) chain.unshift(p);
      violations.push({ module: at, why: rule.why, chain });
      continue;
    }
    for (const dep of byUrl.get(at)?.dependencies ?? []) {
      const target = dep.code?.specifier;
      if (!target || dep.isDynamic) continue;
      const next = resolve(target);
      if (parent.has(next)) continue;
      parent.set(next, at);
      queue.push(next);
    }
  }
  return violations;
}

/** `deno info --json` of `entry`, run by the current Deno. */
export async function moduleInfo(entry: string): Promise<ModuleInfo> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`deno info ${entry}: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** A Deno binary of `version`: `DEPLOY_DENO`, or npm's `deno@<version>` in a cache directory. */
export async function denoBinary(version: string): Promise<string> {
  const given = Deno.env.get("DEPLOY_DENO");
  if (given) return given;
  const home = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  const prefix = join(home, "troupe", `deno-${version}`);
  // The executable itself, not npm's Node wrapper: a signal sent to the wrapper does not reach
  // the Deno process it starts.
  const exe = join(
    prefix,
    "node_modules",
    "deno",
    Deno.build.os === "windows" ? "deno.exe" : "deno",
  );
  const bin = join(prefix, "node_modules", ".bin", "deno");
  const exists = (path: string) => Deno.stat(path).then(() => true, () => false);
  if (await exists(exe)) return exe;
  if (await exists(bin)) return bin;
  const out = await new Deno.Command("npm", {
    args: [
      "install",
      "--prefix",
      prefix,
      "--no-save",
      "--no-audit",
      "--no-fund",
      `deno@${version}`,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`npm install deno@${version} failed`);
  return await exists(exe) ? exe : bin;
}

/** Prints each violation's chain; true when there is none. */
export function report(entry: string, violations: Violation[], what = "embedded-only"): boolean {
  if (!violations.length) {
    console.log(`deploy:check: ${entry} reaches no ${what} module statically`);
    return true;
  }
  console.error(`deploy:check: ${entry} statically reaches ${what} modules:`);
  for (const v of violations) {
    console.error(`  ${v.why}: ${v.module}\n    ${v.chain.join("\n      -> ")}`);
  }
  console.error("  load them with a dynamic import() where they are needed");
  return false;
}

/** The start path's violations: the entry's static graph and each of {@link START_ROOTS}'. */
export async function startPathViolations(entry: string): Promise<Violation[]> {
  const infos = await Promise.all([entry, ...START_ROOTS].map((root) => moduleInfo(root)));
  return infos.flatMap((info) => staticViolations(info, START_PATH));
}

/** The keyed path's violations: {@link KEYED_PATH} modules in `root`'s static graph. */
export async function keyedPathViolations(root: string = KEYED_ROOT): Promise<Violation[]> {
  return staticViolations(await moduleInfo(root), KEYED_PATH);
}

if (import.meta.main) {
  const entry = Deno.args[0] ?? "deploy/edge.ts";
  const embeddedOk = report(entry, staticViolations(await moduleInfo(entry)));
  const startOk = report(entry, await startPathViolations(entry), "start-path (npm but hono)");
  const keyedOk = report(
    KEYED_ROOT,
    await keyedPathViolations(new URL(`../${KEYED_ROOT}`, import.meta.url).pathname),
    "loaded-on-use",
  );
  const graphOk = embeddedOk && startOk && keyedOk;
  const deno = await denoBinary(DEPLOY_DENO_VERSION);
  console.log(`deploy:check: type-checking ${entry} with ${deno}`);
  const checked = await new Deno.Command(deno, {
    args: ["check", "--frozen", entry],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!checked.success) {
    console.error(`deploy:check: ${entry} fails deno check on Deno ${DEPLOY_DENO_VERSION}`);
  }
  if (!graphOk || !checked.success) Deno.exit(1);
}
