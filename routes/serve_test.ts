/**
 * `serve()`: a connection whose request head trickles in is closed after the header timeout,
 * hundreds of them at once included, while normal requests keep being answered; requests and
 * responses stream both ways as with `Deno.serve`.
 */
import assert from "node:assert/strict";
import { within } from "../tests/harness.ts";
import { endlessBody, rawRequest, slowloris } from "../tests/hostile/http_attacks.ts";
import { serve, type ServeInfo } from "./serve.ts";

async function echoServer(headerTimeoutMs: number) {
  return await serve(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs },
    async (req: Request, info: ServeInfo) => {
      const url = new URL(req.url);
      if (url.pathname === "/echo") {
        const text = await req.text();
        return Response.json({
          method: req.method,
          length: text.length,
          ip: info.remoteAddr.hostname,
        });
      }
      if (url.pathname === "/stream") {
        let n = 0;
        return new Response(
          new ReadableStream({
            pull(c) {
              if (n++ === 5) return c.close();
              c.enqueue(new TextEncoder().encode(`line ${n}\n`));
            },
          }),
          { headers: { "content-type": "text/plain", "set-cookie": "a=1" } },
        );
      }
      return Response.json({ ok: true });
    },
  );
}

Deno.test({
  name: "serve: a request head sent a byte a second is cut off at the header timeout",
}, async () => {
  const server = await echoServer(1500);
  try {
    const client = await slowloris({ port: server.addr.port, intervalMs: 1000 });
    const closed = await within(client.closed, 15_000, "the connection stays open");
    assert.ok(closed.afterMs >= 1400, `closed after ${closed.afterMs} ms`);
    assert.ok(closed.sent < 20, `it sent ${closed.sent} bytes first`);
    assert.match(closed.response, /^HTTP\/1\.1 408/);
  } finally {
    await server.shutdown();
  }
});

Deno.test({
  name: "serve: 200 slow heads are all closed while normal requests are answered",
}, async () => {
  const server = await echoServer(2000);
  const clients = [];
  try {
    for (let i = 0; i < 200; i++) {
      clients.push(await slowloris({ port: server.addr.port, intervalMs: 1000 }));
    }
    const all = Promise.all(clients.map((c) => c.closed));
    let done = false;
    all.then(() => done = true, () => done = true);
    let answered = 0;
    while (!done) {
      const res = await within(
        fetch(`http://127.0.0.1:${server.addr.port}/ping`),
        1000,
        "a normal request was not answered in time",
      );
      assert.deepEqual(await res.json(), { ok: true });
      answered++;
      await new Promise((r) => setTimeout(r, 100));
    }
    const closed = await within(all, 20_000, "slow connections stay open");
    assert.equal(closed.length, 200);
    assert.ok(closed.every((c) => c.sent < 30), "each was cut off early");
    assert.ok(answered > 0);
  } finally {
    for (const c of clients) c.stop();
    await server.shutdown();
  }
});

Deno.test(
  "serve: a keep-alive connection's next head is timed too",
  async () => {
    const server = await echoServer(1500);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      await conn.write(new TextEncoder().encode("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200/);
      // The next request starts, then trickles.
      const t0 = performance.now();
      const closed = (async () => {
        while ((await conn.read(buf)) !== null) { /* a 408, then the end */ }
        return performance.now() - t0;
      })().catch(() => performance.now() - t0);
      for (const ch of "GET /ping HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaa") {
        if (performance.now() - t0 > 15_000) break;
        try {
          await conn.write(new TextEncoder().encode(ch));
        } catch {
          break;
        }
        let pause: ReturnType<typeof setTimeout> | undefined;
        const early = await Promise.race([
          closed,
          new Promise((r) => pause = setTimeout(r, 500, null)),
        ]);
        clearTimeout(pause);
        if (early !== null) break;
      }
      const afterMs = await within(closed, 15_000, "the connection stays open");
      assert.ok(afterMs >= 1000 && afterMs < 15_000, `closed after ${afterMs} ms`);
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
      await server.shutdown();
    }
  },
);

Deno.test({
  name: "serve: bodies stream both ways; headers, cookies and the client address pass",
}, async () => {
  for (const headerTimeoutMs of [5000, 0]) {
    const server = await echoServer(headerTimeoutMs);
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (sent >= 1_000_000) return c.close();
          sent += 100_000;
          c.enqueue(new Uint8Array(100_000).fill(97));
        },
      });
      const echo = await fetch(`${base}/echo`, { method: "POST", body });
      assert.deepEqual(await echo.json(), { method: "POST", length: 1_000_000, ip: "127.0.0.1" });
      const stream = await fetch(`${base}/stream`);
      assert.equal(stream.headers.get("set-cookie"), "a=1");
      assert.equal(await stream.text(), [1, 2, 3, 4, 5].map((n) => `line ${n}\n`).join(""));
      const empty = await fetch(`${base}/echo`, { method: "POST" });
      assert.equal((await empty.json()).length, 0);
    } finally {
      await server.shutdown();
    }
  }
});

Deno.test({
  name: "serve: an answer before the body was read closes the connection, and nothing throws later",
}, async () => {
  // Reads some of each body, then refuses the rest unread, as an upload route refusing a file
  // (a gzip bomb, a wide header) after its first bytes does.
  const server = await serve(
    { hostname: "127.0.0.1", port: 0, headerTimeoutMs: 5_000 },
    async (req) => {
      const reader = req.body?.getReader();
      for (let read = 0; reader && read < 256 * 1024;) {
        const { value, done } = await reader.read();
        if (done) break;
        read += value.byteLength;
      }
      await reader?.cancel();
      return Response.json({ error: { code: "PAYLOAD_TOO_LARGE", message: "no" } }, {
        status: 413,
      });
    },
  );
  try {
    for (let i = 0; i < 3; i++) {
      const body = endlessBody();
      const res = await within(
        rawRequest({ port: server.addr.port, path: "/upload", body: body.body }),
        10_000,
        "the early answer",
      );
      assert.equal(res.status, 413);
      assert.ok(body.pulled() < 64 << 20, `${body.pulled()} bytes sent before the close`);
    }
    // The close's linger timer runs after the client has gone: it must not throw (an uncaught
    // error there stopped the server process).
    await new Promise((r) => setTimeout(r, 1_500));
    const again = await fetch(`http://127.0.0.1:${server.addr.port}/`);
    assert.equal(again.status, 413);
    await again.body?.cancel();
  } finally {
    await server.shutdown();
  }
});
