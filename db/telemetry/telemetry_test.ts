/**
 * The OpenTelemetry adapters in one process, with a recording tracer and an AsyncLocalStorage
 * context manager registered through `@opentelemetry/api` (what Deno's built-in OpenTelemetry
 * registers for real; `tests/tracing_test.ts` runs that end to end): database spans only inside
 * a span, with the driver left as it was; enqueue and handler spans and their links; server
 * spans by route template continuing a caller's `traceparent`.
 */
import assert from "node:assert/strict";
import { AsyncLocalStorage } from "node:async_hooks";
import {
  type Attributes,
  type Context,
  context,
  type ContextManager,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { Hono } from "hono";
import { formatTraceparent, type SqlDatabase } from "@troupe/runtime";
import { openPglite } from "@troupe/runtime/pglite";
import { type CopyOut, openPostgres } from "@troupe/runtime/postgres";
import { createPgDatabase } from "../../tests/harness.ts";
import { tracedDatabase } from "./database.ts";
import { contextFrom, OtelTracing, telemetryActive, traceContextOf } from "./tracing.ts";
import { httpTracing } from "../../routes/telemetry.ts";

const hex = (bytes: number) =>
  [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0"))
    .join("");

class RecordedSpan implements Span {
  ended = false;
  status: SpanStatus = { code: 0 };
  exception: unknown;
  constructor(
    public name: string,
    readonly context: SpanContext,
    readonly parentSpanId: string | undefined,
    readonly attributes: Attributes,
    readonly links: Link[],
  ) {}
  spanContext(): SpanContext {
    return this.context;
  }
  setAttribute(key: string, value: unknown): this {
    this.attributes[key] = value as Attributes[string];
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(name: string): this {
    this.name = name;
    return this;
  }
  end(): void {
    this.ended = true;
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(exception: unknown): void {
    this.exception = exception;
  }
}

class RecordingTracer implements Tracer {
  readonly spans: RecordedSpan[] = [];
  startSpan(name: string, options: SpanOptions = {}, ctx: Context = context.active()): Span {
    const parent = trace.getSpanContext(ctx);
    const span = new RecordedSpan(
      name,
      { traceId: parent?.traceId ?? hex(16), spanId: hex(8), traceFlags: 1 },
      parent?.spanId,
      { ...options.attributes },
      options.links ?? [],
    );
    this.spans.push(span);
    return span;
  }
  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...rest: unknown[]) {
    const fn = rest.at(-1) as F;
    const span = this.startSpan(name, (rest.length > 1 ? rest[0] : {}) as SpanOptions);
    return context.with(trace.setSpan(context.active(), span), () => fn(span)) as ReturnType<F>;
  }
  named(name: string): RecordedSpan[] {
    return this.spans.filter((s) => s.name === name);
  }
}

class AsyncContextManager implements ContextManager {
  readonly #store = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#store.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#store.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

Deno.test("telemetryActive() is false until a tracer provider is registered", () => {
  assert.equal(telemetryActive(), false);
  assert.equal(traceContextOf(), undefined);
  context.setGlobalContextManager(new AsyncContextManager());
  trace.setGlobalTracerProvider({ getTracer: () => new RecordingTracer() });
  assert.equal(telemetryActive(), true);
});

Deno.test("tracedDatabase() makes statement spans inside a span only, and keeps the driver's own", async () => {
  const raw = await openPglite();
  const tracer = new RecordingTracer();
  const db: SqlDatabase = tracedDatabase(raw, tracer);
  try {
    assert.equal(db.dialect, "pglite");
    assert.equal(db.shared, raw.shared);
    assert.equal(typeof db.hold, "function");
    await db.query("SELECT 1 AS n");
    assert.equal(tracer.spans.length, 0, "no span outside a span");

    const request = tracer.startSpan("request");
    await context.with(trace.setSpan(ROOT_CONTEXT, request), async () => {
      const rows = await db.query<{ n: number }>("SELECT $1::int AS n", [7]);
      assert.deepEqual(rows, [{ n: 7 }]);
      await db.transaction(async (tx) => {
        await tx.query("CREATE TEMP TABLE t (n int)");
        await tx.query("INSERT INTO t VALUES (1), (2)");
      });
      await assert.rejects(db.query("SELECT nope"));
    });
    request.end();
    const [select, bad] = tracer.named("SELECT");
    assert.equal(select?.parentSpanId, request.spanContext().spanId);
    assert.equal(select?.attributes["db.query.text"], "SELECT $1::int AS n");
    assert.equal(select?.attributes["db.response.returned_rows"], 1);
    assert.equal(select?.attributes["db.system.name"], "postgresql");
    assert.ok(!JSON.stringify(select?.attributes).includes("7"), "no parameters");
    const [tx] = tracer.named("transaction");
    assert.equal(tracer.named("INSERT")[0]?.parentSpanId, tx?.context.spanId);
    assert.equal(bad?.status.code, 2, "a failed statement is an error span");
    assert.ok(tracer.spans.every((s) => s.ended));
  } finally {
    await db.close();
  }
});

Deno.test("OtelTracing: enqueue is a producer span; a handler continues the message's context", async () => {
  const tracer = new RecordingTracer();
  const tracing = new OtelTracing(tracer);
  const request = tracer.startSpan("request");
  const stamped = await context.with(
    trace.setSpan(ROOT_CONTEXT, request),
    () => tracing.enqueue({ actor: "a", count: 2 }, (t) => Promise.resolve(t)),
  );
  const [send] = tracer.named("send a");
  assert.equal(send?.parentSpanId, request.spanContext().spanId);
  assert.equal(send?.attributes["messaging.batch.message_count"], 2);
  assert.equal(
    stamped?.traceparent,
    formatTraceparent(send!.context.traceId, send!.context.spanId, 1),
  );

  // On another process's delivery request: the message's context is the parent, the request a link.
  const delivery = tracer.startSpan("POST /actors/:name", {}, ROOT_CONTEXT);
  const job = { id: "j1", actor: "a", key: "k", attempts: 1, ...stamped };
  const seen = await context.with(
    trace.setSpan(ROOT_CONTEXT, delivery),
    () => tracing.runHandler(job, () => Promise.resolve(tracing.current())),
  );
  const [handler] = tracer.named("process a");
  assert.equal(handler?.context.traceId, send?.context.traceId);
  assert.equal(handler?.parentSpanId, send?.context.spanId);
  assert.deepEqual(handler?.links.map((l) => l.context.spanId), [delivery.spanContext().spanId]);
  assert.equal(seen?.traceparent.split("-")[2], handler?.context.spanId, "current() in handler");

  // A failed handler: an error span, the error rethrown. No context: a trace of its own.
  await assert.rejects(
    tracing.runHandler({ id: "j2", actor: "b", key: "k", attempts: 1 }, () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  const [failed] = tracer.named("process b");
  assert.equal(failed?.parentSpanId, undefined);
  assert.equal(failed?.status.code, 2);
  assert.ok(failed?.exception instanceof Error);
  assert.equal(trace.getSpanContext(contextFrom({ traceparent: "garbage" })), undefined);
});

Deno.test("httpTracing() names server spans by route and continues the caller's traceparent", async () => {
  const tracer = new RecordingTracer();
  const app = new Hono();
  app.use("*", httpTracing(tracer));
  app.get("/items/:id", (c) => c.json({ id: c.req.param("id") }));
  app.get("/broken", () => {
    throw new Error("broken");
  });
  app.onError((_err, c) => c.json({ error: "x" }, 500));
  const caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const res = await app.request("/items/42", { headers: { traceparent: caller } });
  assert.equal(res.status, 200);
  const [span] = tracer.named("GET /items/:id");
  assert.equal(span?.context.traceId, "0af7651916cd43dd8448eb211c80319c");
  assert.equal(span?.parentSpanId, "b7ad6b7169203331");
  assert.equal(span?.attributes["http.route"], "/items/:id");
  assert.equal(span?.attributes["http.response.status_code"], 200);
  assert.ok(span?.ended);
  assert.equal((await app.request("/broken")).status, 500);
  assert.equal(tracer.named("GET /broken")[0]?.status.code, 2);
});

Deno.test("tracedDatabase() keeps a driver's methods beyond the port (PostgreSQL's copyOut)", async () => {
  const { url, drop } = await createPgDatabase();
  const db = tracedDatabase(openPostgres(url, { max: 2 }), new RecordingTracer());
  try {
    const copyOut = (db as SqlDatabase & CopyOut).copyOut;
    assert.equal(typeof copyOut, "function");
    const chunks: string[] = [];
    await copyOut!.call(db, "COPY (SELECT 'x' AS v) TO STDOUT", (bytes) => {
      chunks.push(new TextDecoder().decode(bytes));
    });
    assert.equal(chunks.join(""), "x\n");
    assert.equal(db.dialect, "postgres");
  } finally {
    await db.close();
    await drop();
  }
});
