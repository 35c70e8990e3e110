/**
 * One trace from an HTTP request to the handler of a message its handler sent, across the queue
 * hop, exported by OTLP: the server (tests/fixtures/trace_server.ts, what main.ts composes) runs
 * with Deno's built-in OpenTelemetry, exporting OTLP/HTTP JSON to a receiver in this test, on
 * the table queue (PGlite) and on QStash (the local stand-in, PostgreSQL). Checks the parent
 * links: server span → enqueue (producer) → its INSERT, and → handler (consumer, in another
 * span tree on the other side of the queue) → its SELECT and its log line (on stderr and as an
 * OTLP log record) → the child message's handler.
 */
import assert from "node:assert/strict";
import { createPgDatabase } from "./harness.ts";
import { type ReceivedSpan, startOtlpReceiver } from "./fixtures/otlp_receiver.ts";
import { startQStash } from "./fixtures/qstash_server.ts";
import { freePort, untilUp } from "./start_task.ts";

const SERVER = new URL("./fixtures/trace_server.ts", import.meta.url).pathname;
const KEY = "trace-test-key-0123456789abcdef";
const QSTASH = { token: "trace-qstash", current: "sig_trace_current", next: "sig_trace_next" };
const SERVER_KIND = 2;
const CLIENT_KIND = 3;
const PRODUCER = 4;
const CONSUMER = 5;

interface World {
  env: Record<string, string>;
  /** Deliveries come as HTTP requests (QStash's webhooks). */
  push: boolean;
  close(): Promise<void>;
}

async function tableQueue(): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-trace-" });
  return {
    // `Deno.serve` (no header timeout): the server span is Deno's own, named by the app.
    env: { DATA_DIR: dir, HTTP_HEADER_TIMEOUT_MS: "0" },
    push: false,
    close: () => Deno.remove(dir, { recursive: true }),
  };
}

async function qstash(port: number): Promise<World> {
  const database = await createPgDatabase();
  const stand = await startQStash({
    token: QSTASH.token,
    currentSigningKey: QSTASH.current,
    nextSigningKey: QSTASH.next,
    retryDelayMs: () => 50,
  });
  return {
    env: {
      DATA_DIR: "/tmp/troupe-trace-unused",
      DATABASE_URL: database.url,
      QSTASH_URL: stand.url,
      QSTASH_TOKEN: QSTASH.token,
      QSTASH_CURRENT_SIGNING_KEY: QSTASH.current,
      QSTASH_NEXT_SIGNING_KEY: QSTASH.next,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
    },
    push: true,
    async close() {
      await stand.close();
      await database.drop();
    },
  };
}

/** Reads a child's stderr into `out` as lines, as they come; `done` once the stream ends. */
function lines(stream: ReadableStream<Uint8Array>): { out: string[]; done: Promise<void> } {
  const out: string[] = [];
  const done = (async () => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      out.push(...parts);
    }
  })().catch(() => {});
  return { out, done };
}

/** Whether `span` is a descendant of `ancestor`. */
function under(spans: ReceivedSpan[], span: ReceivedSpan, ancestor: ReceivedSpan): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let p = byId.get(span.parentSpanId); p; p = byId.get(p.parentSpanId)) {
    if (p.spanId === ancestor.spanId) return true;
  }
  return false;
}

/** The spans as an indented tree, for failure messages. */
function tree(spans: ReceivedSpan[]): string {
  const ids = new Set(spans.map((s) => s.spanId));
  const lines: string[] = [];
  const walk = (parent: string, depth: number) => {
    for (const s of spans.filter((x) => x.parentSpanId === parent)) {
      lines.push(`${"  ".repeat(depth)}${s.name} [${s.kind}]`);
      walk(s.spanId, depth + 1);
    }
  };
  for (const root of spans.filter((s) => !ids.has(s.parentSpanId))) {
    lines.push(`${root.name} [${root.kind}] (parent ${root.parentSpanId || "none"})`);
    walk(root.spanId, 1);
  }
  return lines.join("\n");
}

const one = (spans: ReceivedSpan[], what: string, test: (s: ReceivedSpan) => boolean) => {
  const found = spans.filter(test);
  assert.equal(found.length, 1, `one ${what}: ${found.map((s) => s.name).join(", ")}`);
  return found[0]!;
};

for (
  const [name, world] of [
    ["table queue (PGlite)", () => tableQueue()],
    ["QStash (PostgreSQL)", (port: number) => qstash(port)],
  ] as const
) {
  Deno.test({
    name: `${name}: one trace from the request through the queue to a child message's handler`,
  }, async () => {
    const otlp = await startOtlpReceiver();
    const port = freePort();
    const w = await world(port);
    const server = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SERVER],
      env: {
        ...w.env,
        PORT: String(port),
        LOG_LEVEL: "info",
        DEV_API_KEY: KEY,
        OTEL_DENO: "true",
        OTEL_SERVICE_NAME: "troupe-test",
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const { out: stderr, done: stderrRead } = lines(server.stderr);
    try {
      await untilUp(`http://127.0.0.1:${port}/api/health`, server);
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/actors/trace.parent/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": KEY },
        body: JSON.stringify({ input: { n: 41 } }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const { jobId } = await res.json();

      const spans = await otlp.until((all) =>
        all.some((s) => s.name === "process trace.child") &&
        all.some((s) => s.name === "send trace.parent") &&
        all.some((s) => s.kind === SERVER_KIND && s.name.includes("/actors/:name/jobs")), 60_000);
      assert.equal(otlp.refused, 0, "the exporter sends JSON");
      const request = one(
        spans,
        "enqueue request span",
        (s) => s.kind === SERVER_KIND && s.name === "POST /api/v1/actors/:name/jobs",
      );
      const traceId = request.traceId;
      const inTrace = spans.filter((s) => s.traceId === traceId);
      const send = one(inTrace, "enqueue span", (s) => s.name === "send trace.parent");
      assert.equal(send.kind, PRODUCER);
      assert.equal(send.parentSpanId, request.spanId, "the enqueue is the request's child");
      assert.ok(
        inTrace.some((s) =>
          s.kind === CLIENT_KIND && under(inTrace, s, send) &&
          String(s.attributes["db.query.text"]).includes("INSERT INTO")
        ),
        `the enqueue's INSERT is under it:\n${tree(inTrace)}`,
      );
      const handler = one(inTrace, "parent handler span", (s) => s.name === "process trace.parent");
      assert.equal(handler.kind, CONSUMER);
      assert.equal(handler.parentSpanId, send.spanId, "the handler continues the enqueue's span");
      assert.equal(handler.attributes["messaging.message.id"], jobId);
      assert.ok(
        inTrace.some((s) =>
          s.parentSpanId === handler.spanId &&
          String(s.attributes["db.query.text"]).startsWith("SELECT $1::int + 1")
        ),
        `the handler's query is its child:\n${tree(inTrace)}`,
      );
      if (w.push) {
        // The webhook request that delivered it is its own trace, linked from the handler.
        const [link] = handler.links;
        // The delivery's span ends after its handler's: it may come in a later export.
        await otlp.until((all) => all.some((s) => s.spanId === link?.spanId), 60_000);
        const delivery = spans.find((s) => s.spanId === link?.spanId);
        assert.equal(delivery?.name, "POST /actors/:name", `the delivery is linked: ${link}`);
      } else assert.deepEqual(handler.links, [], "a claimed message has no delivery request");
      const child = one(inTrace, "child handler span", (s) => s.name === "process trace.child");
      assert.equal(child.parentSpanId, handler.spanId, "the child message continues its sender");
      assert.ok(spans.every((s) => s.service === "troupe-test"));

      const logged = stderr.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }).find((l) => l.msg === "trace parent ran");
      assert.ok(logged, `the handler's log line (stderr: ${stderr.slice(-5).join("\n")})`);
      assert.equal(logged.traceId, traceId);
      assert.equal(logged.spanId, handler.spanId);
      assert.equal(logged.jobId, jobId);
      // Deno exports the same line as an OTLP log record, in the handler's span.
      const records = await otlp.untilLogs(
        (all) => all.some((r) => String(r.body).includes('"msg":"trace parent ran"')),
        60_000,
      );
      const record = records.find((r) => String(r.body).includes('"msg":"trace parent ran"'));
      assert.equal(record?.traceId, traceId);
      assert.equal(record?.spanId, handler.spanId);
    } finally {
      try {
        server.kill("SIGTERM");
      } catch { /* exited */ }
      await server.status;
      await stderrRead;
      await w.close();
      await otlp.close();
    }
  });
}
