/**
 * Database spans: a `SqlDatabase` whose statements, transactions and COPYs are client spans
 * (`db.system.name` postgresql, the statement's text with its `$n` placeholders, never its
 * parameters).
 *
 * Invariants:
 * - A statement gets a span only inside a recording span (a request, an enqueue, a handler):
 *   the runtime's background polling, outside any, makes none.
 * - The database behaves exactly as the one wrapped: the same results and errors, and every
 *   property and method the driver has beyond the port (e.g. `copyOut`) is the driver's own.
 */
import { SpanKind, trace, type Tracer } from "@opentelemetry/api";
import type { CopyData, QueryOptions, SqlDatabase, SqlExecutor } from "@troupe/runtime";
import { inSpan, TRACER_NAME } from "./tracing.ts";

/** Longest statement text kept on a span. */
const MAX_TEXT = 2_000;

/** `db` with spans around its statements (see the invariants above). */
export function tracedDatabase(
  db: SqlDatabase,
  tracer: Tracer = trace.getTracer(TRACER_NAME),
): SqlDatabase {
  const transaction = <T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> =>
    traced(tracer, "transaction", undefined, () => db.transaction((tx) => fn(wrap(tx, tracer))));
  return wrap(db, tracer, { transaction });
}

function wrap<D extends SqlExecutor>(
  target: D,
  tracer: Tracer,
  extra: Record<string, unknown> = {},
): D {
  const query = <T>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<T[]> =>
    traced(tracer, operation(text), text, async (span) => {
      const rows = await target.query<T>(text, params, options);
      span?.setAttribute("db.response.returned_rows", rows.length);
      return rows;
    });
  const copyIn = target.copyIn &&
    ((table: string, columns: readonly string[], data: CopyData) =>
      traced(
        tracer,
        "COPY",
        `COPY ${table} FROM STDIN`,
        () => target.copyIn!(table, columns, data),
      ));
  const own: Record<string, unknown> = { query, ...(copyIn ? { copyIn } : {}), ...extra };
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === "string" && prop in own) return own[prop];
      const value = Reflect.get(t, prop);
      // Drivers keep private fields: their methods run on the driver itself.
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
}

/** The statement's first keyword (`SELECT`, `INSERT`, `WITH`, ...). */
function operation(text: string): string {
  return /^\s*([A-Za-z]+)/.exec(text)?.[1]?.toUpperCase() ?? "SQL";
}

function traced<T>(
  tracer: Tracer,
  name: string,
  text: string | undefined,
  fn: (span?: { setAttribute(k: string, v: number): unknown }) => Promise<T>,
): Promise<T> {
  if (!trace.getActiveSpan()?.isRecording()) return fn();
  return inSpan(tracer, name, {
    kind: SpanKind.CLIENT,
    attributes: {
      "db.system.name": "postgresql",
      "db.operation.name": name,
      ...(text ? { "db.query.text": text.slice(0, MAX_TEXT) } : {}),
    },
  }, (span) => fn(span));
}
