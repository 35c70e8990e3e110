/**
 * Serves a fetch handler over HTTP with a header-read timeout: a connection whose request head
 * is not complete within `headerTimeoutMs` is closed (with a 408), so clients that send their
 * heads a byte at a time cannot hold connections open (slowloris). `Deno.serve` has no such
 * timeout (hyper's is off without a timer, and no option reaches it), nor does a connection
 * reach JavaScript before its head is complete; Deno's `node:http` server enforces Node's
 * `headersTimeout` (per request, keep-alive ones included) and `keepAliveTimeout`, so it is
 * the front here. It costs some microseconds a request, small beside a route that reads the
 * database (`bench/job_status.ts` with `HTTP_HEADER_TIMEOUT_MS=0` and without compares the
 * two). `headerTimeoutMs: 0` serves with `Deno.serve` instead, for behind a proxy that times
 * heads out itself.
 *
 * Request bodies are not timed here: an upload's pace is its route's to judge (routes/upload.ts).
 */
import type http from "node:http";

let nodeHttp: Promise<typeof http> | null = null;

/**
 * Starts loading `node:http` (once), which {@link serve} needs with a header timeout: a start
 * calls it early so that the module loads while other work (a database connecting) waits.
 */
export function loadNodeHttp(): Promise<typeof http> {
  return nodeHttp ??= import("node:http").then((m) => m.default);
}

/** The connection a request came on (what `Deno.serve` gives a handler). */
export interface ServeInfo {
  remoteAddr: { transport: "tcp"; hostname: string; port: number };
}

export type FetchHandler = (req: Request, info: ServeInfo) => Response | Promise<Response>;

export interface ServeOptions {
  hostname: string;
  port: number;
  /** A request head not complete within this is a 408 and a closed connection; 0: `Deno.serve`. */
  headerTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. @default 5 s */
  keepAliveTimeoutMs?: number;
  onListen?: (addr: { hostname: string; port: number }) => void;
}

/** A running server. */
export interface Server {
  readonly addr: { hostname: string; port: number };
  /**
   * Stops accepting, lets requests in flight finish and closes idle connections; connections
   * still open after `graceMs` (default 2 s) are closed.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** Serves `handler` on `hostname:port` (see the module doc for which server runs it). */
export async function serve(options: ServeOptions, handler: FetchHandler): Promise<Server> {
  if (options.headerTimeoutMs <= 0) return await denoServe(options, handler);
  const { headerTimeoutMs, keepAliveTimeoutMs = 5_000 } = options;
  const server = (await loadNodeHttp()).createServer({
    // How often heads and idle connections are checked: the timeout's precision.
    connectionsCheckingInterval: Math.max(50, Math.min(1000, headerTimeoutMs / 4)),
    headersTimeout: headerTimeoutMs,
    // An upload's whole time is its route's to judge (by its size and pace), not one number.
    requestTimeout: 0,
    keepAliveTimeout: keepAliveTimeoutMs,
  }, function onRequest(req, res) {
    respond(handler, req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { address, port } = server.address() as { address: string; port: number };
  const addr = { hostname: address, port };
  options.onListen?.(addr);
  return {
    addr,
    shutdown(graceMs = 2_000) {
      return new Promise<void>((resolve) => {
        // Idle keep-alive connections go at once; a connection still busy after the grace (a
        // client that never finishes, or one the server never sees as idle) is closed, so a
        // stop is never held for minutes.
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

async function denoServe(options: ServeOptions, handler: FetchHandler): Promise<Server> {
  let listening!: (addr: { hostname: string; port: number }) => void;
  const ready = new Promise<{ hostname: string; port: number }>((r) => listening = r);
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: ({ hostname, port }) => listening({ hostname, port }),
  }, (req, info) => handler(req, info as ServeInfo));
  const addr = await ready;
  options.onListen?.(addr);
  return { addr, shutdown: () => server.shutdown() };
}

/** Hands one node request to `handler` and writes its response back, streaming both ways. */
async function respond(
  handler: FetchHandler,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const aborted = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) aborted.abort(new Error("the client went away"));
  });
  let request: Request;
  try {
    request = toRequest(req, aborted.signal);
  } catch {
    res.writeHead(400, { "content-type": "application/json", connection: "close" });
    res.end(JSON.stringify({ error: { code: "BAD_REQUEST", message: "malformed request" } }));
    return;
  }
  const socket = req.socket;
  const response = await handler(request, {
    remoteAddr: {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "unknown",
      port: socket.remotePort ?? 0,
    },
  });
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length) headers["set-cookie"] = cookies;
  // A body left unread (a refused upload) would be read and dropped for as long as the client
  // sends it: the connection ends with this response instead.
  const unread = !req.complete;
  if (unread) headers.connection = "close";
  res.writeHead(response.status, response.statusText || undefined, headers);
  if (unread) {
    res.once("finish", () => {
      // A short linger lets the client read the answer before the reset of unread bytes.
      // The socket seen at the start: by now the request may be detached from it (null).
      // The timer ends with the socket, so a shutdown leaves none behind.
      if (socket.destroyed) return;
      const t = setTimeout(() => socket.destroy(), 1000);
      Deno.unrefTimer(t);
      socket.once("close", () => clearTimeout(t));
    });
  }
  if (!response.body) return void res.end();
  const reader = response.body.getReader();
  aborted.signal.addEventListener(
    "abort",
    () => reader.cancel(aborted.signal.reason).catch(() => {}),
  );
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (!res.write(value)) {
        await new Promise<void>((resolve) => {
          res.once("drain", resolve);
          res.once("close", resolve);
        });
      }
      if (aborted.signal.aborted) return;
    }
    res.end();
  } catch {
    res.destroy();
  }
}

/** The fetch `Request` of a node request; its body streams (none for GET and HEAD). */
/**
 * A request's body as a byte stream, read as it is pulled (the socket is paused in between).
 * Once the reader cancels it (a route refusing an upload mid-way), bytes still arriving are
 * dropped: Deno's `Readable.toWeb` enqueued them into the closed stream and threw an uncaught
 * TypeError that stopped the process.
 */
function bodyStream(req: http.IncomingMessage): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Uint8Array) => {
        if (done) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) req.pause();
      });
      req.once("end", () => {
        if (done) return;
        done = true;
        controller.close();
      });
      req.once("error", (err) => {
        if (done) return;
        done = true;
        controller.error(err);
      });
      req.pause();
    },
    pull() {
      req.resume();
    },
    cancel() {
      done = true;
      req.resume(); // drained and dropped until the connection closes after the answer
    },
  }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength });
}

function toRequest(req: http.IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const url = new URL(req.url ?? "/", `http://${headers.get("host") || "localhost"}`);
  const method = req.method ?? "GET";
  const bodyless = method === "GET" || method === "HEAD" ||
    (headers.get("content-length") === "0" && !headers.has("transfer-encoding"));
  return new Request(url, {
    method,
    headers,
    signal,
    ...(bodyless ? {} : {
      body: bodyStream(req),
      duplex: "half",
    }),
  } as RequestInit);
}
