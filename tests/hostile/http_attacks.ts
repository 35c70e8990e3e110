/**
 * Hostile HTTP clients and bodies, for the route tests and the end-to-end hostile suite: a form
 * whose field never ends, a body that never ends, an upload that trickles in, and a slowloris
 * client that sends its request head a byte at a time. Each body counts what was pulled from it,
 * so a test can tell that the server stopped reading early rather than at the end.
 */

const encoder = new TextEncoder();

/** A request body a test can watch. */
export interface WatchedBody {
  body: ReadableStream<Uint8Array>;
  /** Bytes the server has pulled so far. */
  pulled(): number;
  /** The reason the server let the body go with, once it did (else undefined). */
  cancelled(): unknown;
}

/**
 * A body of `head` then `filler` repeated in pieces of about `chunkBytes` until `totalBytes` (forever by
 * default), then `tail`. Given to `fetch` or `app.request` as a stream, it has no
 * Content-Length: it arrives chunked, as from a client that streams.
 */
export function endlessBody(
  { head = "", tail = "", filler = "x", chunkBytes = 64 * 1024, totalBytes = Infinity }: {
    head?: string;
    tail?: string;
    filler?: string;
    chunkBytes?: number;
    totalBytes?: number;
  } = {},
): WatchedBody {
  // Whole fillers only, so a filler that is itself a part stays whole.
  const chunk = encoder.encode(filler.repeat(Math.max(1, Math.floor(chunkBytes / filler.length))));
  let pulled = 0;
  let sentFiller = 0;
  let state: "head" | "filler" | "tail" | "done" = "head";
  let reason: unknown;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      // Each pull enqueues something or closes: a pull that does neither is never called again.
      let out = new Uint8Array(0);
      while (out.byteLength === 0) {
        if (state === "head") {
          out = encoder.encode(head);
          state = "filler";
        } else if (state === "filler") {
          const n = Math.min(chunk.byteLength, totalBytes - sentFiller);
          out = chunk.slice(0, n);
          sentFiller += n;
          if (sentFiller >= totalBytes) state = "tail";
        } else if (state === "tail") {
          out = encoder.encode(tail);
          state = "done";
        } else {
          return c.close();
        }
      }
      pulled += out.byteLength;
      c.enqueue(out);
    },
    cancel(r) {
      reason = r ?? "cancelled";
    },
  });
  return { body, pulled: () => pulled, cancelled: () => reason };
}

/** A multipart boundary for hand-made forms. */
export const BOUNDARY = "----TroupeHostile7MA4YWxkTrZu0gW";

/** One multipart part, as the bytes before its value. */
export function partHead(name: string, filename?: string, contentType?: string): string {
  return `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"${
    filename === undefined ? "" : `; filename="${filename}"`
  }\r\n${contentType ? `Content-Type: ${contentType}\r\n` : ""}\r\n`;
}

/** A whole multipart part with its value. */
export function part(name: string, value: string, filename?: string, type?: string): string {
  return `${partHead(name, filename, type)}${value}\r\n`;
}

/** The end of a form made with {@link part}. */
export const FORM_END = `--${BOUNDARY}--\r\n`;

/**
 * A `multipart/form-data` body (no Content-Length) whose non-file field `field` keeps growing:
 * `before` (whole parts made with {@link part}) come first, then the field's value, forever by
 * default, then `after` and the form's end. A server that reads fields whole holds all of it.
 */
export function hugeFieldForm(
  { field = "name", before = "", after = "", totalBytes = Infinity, chunkBytes = 64 * 1024 }: {
    field?: string;
    before?: string;
    after?: string;
    totalBytes?: number;
    chunkBytes?: number;
  } = {},
): WatchedBody & { contentType: string } {
  return {
    ...endlessBody({
      head: before + partHead(field),
      tail: `\r\n${after}${FORM_END}`,
      filler: "A",
      chunkBytes,
      totalBytes,
    }),
    contentType: `multipart/form-data; boundary=${BOUNDARY}`,
  };
}

/**
 * `bytes` sent `chunkBytes` at a time, one piece every `intervalMs` (the first at once): an
 * upload over a slow link, or one that trickles in on purpose. `done()` tells whether all of it
 * was sent.
 */
export function trickleBody(
  bytes: Uint8Array | string,
  { chunkBytes, intervalMs }: { chunkBytes: number; intervalMs: number },
): WatchedBody & { done(): boolean } {
  const data = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
  let pulled = 0;
  let reason: unknown;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (pulled > 0) {
        await new Promise((r) => timer = setTimeout(r, intervalMs));
        if (reason !== undefined) return;
      }
      if (pulled >= data.byteLength) return c.close();
      const piece = data.slice(pulled, pulled + chunkBytes);
      pulled += piece.byteLength;
      c.enqueue(piece);
    },
    cancel(r) {
      reason = r ?? "cancelled";
      clearTimeout(timer);
    },
  });
  return {
    body,
    pulled: () => pulled,
    cancelled: () => reason,
    done: () => pulled >= data.byteLength,
  };
}

/** A slowloris connection: what became of it. */
export interface Slowloris {
  /** Resolves when the server closes the connection: when, after how many bytes, what it said. */
  closed: Promise<{ afterMs: number; sent: number; response: string }>;
  /** Bytes of the head sent so far. */
  sent(): number;
  /** Stops sending and closes the connection from this side. */
  stop(): void;
}

/**
 * Opens a TCP connection to `hostname:port` and sends a request head one byte every
 * `intervalMs`, never finishing it (the head is long, and its end never comes). The server
 * should close the connection once its header timeout passes.
 */
export async function slowloris(
  { hostname = "127.0.0.1", port, intervalMs = 1000, path = "/api/health" }: {
    hostname?: string;
    port: number;
    intervalMs?: number;
    path?: string;
  },
): Promise<Slowloris> {
  const conn = await Deno.connect({ hostname, port });
  const head = encoder.encode(
    `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nX-Pad: ${"a".repeat(100_000)}`,
  );
  const t0 = performance.now();
  let sent = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = (async () => {
    const buf = new Uint8Array(4096);
    let response = "";
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        response += new TextDecoder().decode(buf.subarray(0, n));
      }
    } catch {
      // A reset is a close too.
    }
    stopped = true;
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // already closed by stop()
    }
    return { afterMs: performance.now() - t0, sent, response };
  })();
  const send = async () => {
    if (stopped || sent >= head.byteLength) return;
    try {
      await conn.write(head.subarray(sent, sent + 1));
      sent++;
    } catch {
      return; // closed by the server
    }
    if (!stopped) timer = setTimeout(send, intervalMs);
  };
  await send();
  return {
    closed,
    sent: () => sent,
    stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // already closed
      }
    },
  };
}

/**
 * A request sent over a raw TCP connection, its `body` streamed while the answer is read: a
 * server that answers early (a 4xx from the first bytes) and closes is seen answering, where a
 * fetch client fails with a broken pipe. Resolves with the status and the answer's body text.
 */
export async function rawRequest(
  { hostname = "127.0.0.1", port, method = "POST", path, headers = {}, body }: {
    hostname?: string;
    port: number;
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body: ReadableStream<Uint8Array>;
  },
): Promise<{ status: number; body: string; sentBytes: number }> {
  const conn = await Deno.connect({ hostname, port });
  const head = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${hostname}`,
    "Transfer-Encoding: chunked",
    "Connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ].join("\r\n") + "\r\n\r\n";
  let sentBytes = 0;
  let answered = false;
  const sending = (async () => {
    try {
      await conn.write(encoder.encode(head));
      for await (const piece of body) {
        if (answered) break;
        await conn.write(encoder.encode(`${piece.byteLength.toString(16)}\r\n`));
        await conn.write(piece);
        await conn.write(encoder.encode("\r\n"));
        sentBytes += piece.byteLength;
      }
      if (!answered) await conn.write(encoder.encode("0\r\n\r\n"));
    } catch {
      // The server closed the connection after answering: expected of an early refusal.
    }
  })();
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(16 * 1024);
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      answered = true;
    }
  } catch {
    // A reset after the answer is a close too.
  }
  answered = true;
  await sending;
  try {
    conn.close();
  } catch {
    // already closed
  }
  const text = new TextDecoder().decode(
    chunks.reduce((all, c) => {
      const joined = new Uint8Array(all.byteLength + c.byteLength);
      joined.set(all);
      joined.set(c, all.byteLength);
      return joined;
    }, new Uint8Array()),
  );
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const split = text.indexOf("\r\n\r\n");
  let payload = split >= 0 ? text.slice(split + 4) : "";
  if (/\r\ntransfer-encoding: chunked/i.test(text.slice(0, split))) {
    let out = "";
    let rest = payload;
    while (rest.length) {
      const eol = rest.indexOf("\r\n");
      const size = parseInt(rest.slice(0, eol), 16);
      if (!size) break;
      out += rest.slice(eol + 2, eol + 2 + size);
      rest = rest.slice(eol + 2 + size + 2);
    }
    payload = out;
  }
  return { status, body: payload, sentBytes };
}
