/**
 * Registers a group of contract tests once per database target: the database is opened
 * before the first test of the group and closed after the last.
 */
import {
  type AnyActor,
  jsonLogger,
  Runtime,
  type RuntimeOptions,
  type SqlDatabase,
  TableQueueTransport,
  type Transport,
} from "@troupe/runtime";
import { type DbTarget, targets, type TestDatabase } from "../harness.ts";

export interface SuiteContext {
  target: DbTarget["name"];
  db: SqlDatabase;
  url?: string;
  /** A started runtime over the suite's database, stopped after the test. */
  runtime(
    actors: AnyActor[],
    options?: Partial<Omit<RuntimeOptions, "db" | "actors" | "transport">> & {
      transport?: Transport;
      start?: boolean;
    },
  ): Promise<Runtime>;
}

export function contractSuite(
  group: string,
  tests: Record<string, (ctx: SuiteContext) => Promise<void>>,
  { only }: { only?: DbTarget["name"][] } = {},
): void {
  for (const target of targets) {
    if (only && !only.includes(target.name)) continue;
    let opened: Promise<TestDatabase> | null = null;
    const names = Object.keys(tests);
    for (const [i, name] of names.entries()) {
      Deno.test({
        name: `${group} [${target.name}]: ${name}`,
        // Sanitizers off: the group's database is opened by its first test, closed by its last.
        sanitizeOps: false,
        sanitizeResources: false,
        async fn() {
          opened ??= target.open();
          const tdb = await opened;
          const started: Runtime[] = [];
          const ctx: SuiteContext = {
            target: target.name,
            db: tdb.db,
            ...(tdb.url ? { url: tdb.url } : {}),
            async runtime(actors, options = {}) {
              const { transport, start = true, ...rest } = options;
              const rt = new Runtime({
                db: tdb.db,
                actors,
                transport: transport ?? new TableQueueTransport(tdb.db, { pollMs: 100 }),
                logger: jsonLogger("silent"),
                ...rest,
              });
              started.push(rt);
              if (start) await rt.start();
              return rt;
            },
          };
          try {
            await tests[name]!(ctx);
          } finally {
            for (const rt of started) await rt.stop(2000);
            if (i === names.length - 1) await tdb.cleanup();
          }
        },
      });
    }
  }
}
