/**
 * Blobs in an S3-compatible bucket (AWS S3, Cloudflare R2, MinIO), signed with `aws4fetch`
 * (fetch-based: it runs on the edge). A blob is the object `<prefix>blobs/<ab>/<sha256>`.
 *
 * `put` hashes while it sends: a blob smaller than one part is held (one part at most) and sent
 * with one `PUT` under its hash; a larger one goes as a multipart upload of fixed-size parts
 * (R2 wants them equal) to a temporary key, then is copied under its hash by the bucket
 * (server-side; one copy takes 5 GiB at most) and the temporary object removed. Memory is one
 * part whatever the size. A failed or refused upload is aborted: nothing is kept (a bucket
 * lifecycle rule that aborts incomplete multipart uploads after a day covers a crashed process).
 *
 * `collect` removes an object whose `Last-Modified` is past the grace period; storing the same
 * bytes again writes the object anew, which refreshes that time. The bucket offers no delete
 * conditional on that time, so a put landing between the check and the delete can lose its
 * object; `holdBlobs` (db/blobs/refs.ts) then finds it gone and the upload answers 503 (send it
 * again): no reference ever points to nothing.
 *
 * A request the bucket does not answer within `requestTimeoutMs`, whose connection fails, or that
 * gets a 5xx or 429 is sent again on a new connection, `retries` attempts in all; an object's
 * bytes that stop coming for as long fail the read.
 *
 * Direct uploads ({@linkcode S3BlobStore.presignPut}) go to `<prefix>uploads/...` keys that
 * the client `PUT`s to with a presigned URL; the app reads them once to store them as blobs.
 */
import { createHash } from "node:crypto";
import { AwsClient } from "aws4fetch";
import { NotFoundError, PayloadTooLargeError } from "@troupe/runtime";
import {
  type BlobInfo,
  type BlobStore,
  bufferFor,
  type PutOptions,
  type PutResult,
  readExactly,
  SHA256_HEX,
} from "./port.ts";

export interface S3BlobOptions {
  /** `https://s3.us-east-1.amazonaws.com`, `https://<account>.r2.cloudflarestorage.com`, ... */
  endpoint: string;
  bucket: string;
  /** `auto` for R2. @default "us-east-1" */
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * `https://endpoint/bucket/key` (MinIO, local servers) instead of
   * `https://bucket.endpoint/key` (AWS S3's default). @default false
   */
  forcePathStyle?: boolean;
  /** Prepended to every key (one bucket for several deployments). @default "" */
  prefix?: string;
  /** Size of a multipart upload's parts; S3 wants 5 MiB at least. @default 8 MiB */
  partSize?: number;
  /**
   * Attempts of a request that failed with a 5xx or a 429, a network error, or no answer within
   * `requestTimeoutMs`, a short jittered wait apart. @default 3
   */
  retries?: number;
  /**
   * How long a request may wait for the bucket's answer (its status and headers) before it is
   * abandoned and sent again on a new connection, and how long an object being read may send no
   * bytes (while its reader waits for them) before the read fails. @default 60000
   */
  requestTimeoutMs?: number;
}

/** What the client of a direct upload is given. */
export interface PresignedPut {
  url: string;
  method: "PUT";
  /** Headers the `PUT` must send as they are (they are signed). */
  headers: Record<string, string>;
}

/**
 * The bytes sent are not hashed into the signature: `put` hashes them once already (SHA-256,
 * for the key), and the connection (TLS) guards them on the way, as the AWS SDKs rely on.
 */
const UNSIGNED = { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" };

export class S3BlobStore implements BlobStore {
  readonly kind = "s3" as const;
  readonly #aws: AwsClient;
  readonly #base: URL;
  readonly #pathStyle: boolean;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #partSize: number;
  readonly #attempts: number;
  readonly #timeoutMs: number;

  constructor(o: S3BlobOptions) {
    // Retries are this store's (aws4fetch's own retry no network error).
    this.#aws = new AwsClient({
      accessKeyId: o.accessKeyId,
      secretAccessKey: o.secretAccessKey,
      region: o.region ?? "us-east-1",
      service: "s3",
      retries: 0,
    });
    this.#attempts = Math.max(1, o.retries ?? 3);
    this.#timeoutMs = Math.max(1, o.requestTimeoutMs ?? 60_000);
    this.#base = new URL(o.endpoint);
    this.#pathStyle = o.forcePathStyle ?? false;
    this.#bucket = o.bucket;
    this.#prefix = o.prefix ?? "";
    this.#partSize = o.partSize ?? 8 * 1024 * 1024;
  }

  #url(key: string, query = ""): string {
    const path = key.split("/").map(encodeURIComponent).join("/");
    const u = new URL(this.#base);
    const root = u.pathname.replace(/\/$/, "");
    if (this.#pathStyle) u.pathname = `${root}/${this.#bucket}/${path}`;
    else {
      u.hostname = `${this.#bucket}.${u.hostname}`;
      u.pathname = `${root}/${path}`;
    }
    return `${u.origin}${u.pathname}${query ? `?${query}` : ""}`;
  }

  #blobKey(sha256: string): string {
    return `${this.#prefix}blobs/${sha256.slice(0, 2)}/${sha256}`;
  }

  /** The key a direct upload is `PUT` to. */
  uploadKey(scope: string, uploadId: string): string {
    return `${this.#prefix}uploads/${encodeURIComponent(scope)}/${uploadId}`;
  }

  async #send(
    key: string,
    init: NonNullable<Parameters<AwsClient["fetch"]>[1]> & { query?: string },
    ok: number[] = [200],
  ) {
    const { query, ...rest } = init;
    const res = await this.#fetch(this.#url(key, query), rest);
    if (!ok.includes(res.status)) {
      const text = await res.text().catch(() => "");
      throw new S3Error(`${rest.method ?? "GET"} ${key}: ${res.status} ${text.slice(0, 300)}`);
    }
    return res;
  }

  /**
   * The bucket's answer to a signed request, sent again (signed anew) after a 5xx or a 429, a
   * network error or `requestTimeoutMs` without an answer, up to `retries` attempts in all. An
   * abandoned request's connection is dropped, so the next attempt opens another (a connection
   * the server stopped answering on is not used again). The bodies sent here are bytes or text,
   * which can be sent again.
   */
  async #fetch(url: string, init: NonNullable<Parameters<AwsClient["fetch"]>[1]>) {
    for (let attempt = 1;; attempt++) {
      const last = attempt >= this.#attempts;
      const abort = new AbortController();
      const timer = setTimeout(
        () => abort.abort(new S3Error(`no answer in ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      let res: Response;
      try {
        res = await this.#aws.fetch(url, { ...init, signal: abort.signal });
      } catch (err) {
        if (last) {
          throw new S3Error(
            `${init.method ?? "GET"} ${url}: ${String(abort.signal.reason ?? err)}`,
          );
        }
        await retryPause(attempt);
        continue;
      } finally {
        clearTimeout(timer);
      }
      if (last || (res.status < 500 && res.status !== 429)) return res;
      await res.body?.cancel();
      await retryPause(attempt);
    }
  }

  /** Size and time of an object, or null when there is none. */
  async head(key: string): Promise<{ size: number; modified: number } | null> {
    const res = await this.#send(key, { method: "HEAD" }, [200, 404]);
    await res.body?.cancel();
    if (res.status === 404) return null;
    return {
      size: Number(res.headers.get("content-length") ?? 0),
      modified: Date.parse(res.headers.get("last-modified") ?? "") || 0,
    };
  }

  /** Removes an object (none there is not an error). */
  async remove(key: string): Promise<void> {
    await (await this.#send(key, { method: "DELETE" }, [200, 204, 404])).body?.cancel();
  }

  /**
   * A URL that lets its holder `PUT` exactly `size` bytes of `contentType` to `key` until
   * `expiresInSeconds` pass: both headers are signed, so the bucket refuses any other.
   */
  async presignPut(
    key: string,
    { size, contentType, expiresInSeconds }: {
      size: number;
      contentType: string;
      expiresInSeconds: number;
    },
  ): Promise<PresignedPut> {
    const headers = { "content-type": contentType, "content-length": String(size) };
    const signed = await this.#aws.sign(
      `${this.#url(key)}?X-Amz-Expires=${expiresInSeconds}`,
      { method: "PUT", headers, aws: { signQuery: true, allHeaders: true } },
    );
    return { url: signed.url, method: "PUT", headers: { "Content-Type": contentType } };
  }

  /** The object under `key`, streamed (a direct upload, read once to be stored). */
  async readKey(key: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#send(key, {}, [200, 404]);
    if (res.status === 404 || !res.body) {
      await res.body?.cancel();
      throw new NotFoundError("object", key);
    }
    return watchIdle(res.body, this.#timeoutMs, key);
  }

  async put(body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const hash = createHash("sha256");
    const part = new Uint8Array(this.#partSize);
    let filled = 0;
    let size = 0;
    let multipart: Multipart | null = null;
    try {
      const reader = body.getReader();
      try {
        while (true) {
          options.signal?.throwIfAborted();
          const { value, done } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (options.maxBytes !== undefined && size > options.maxBytes) {
            throw new PayloadTooLargeError(options.maxBytes);
          }
          hash.update(value);
          for (let from = 0; from < value.byteLength;) {
            const n = Math.min(value.byteLength - from, part.length - filled);
            part.set(value.subarray(from, from + n), filled);
            filled += n;
            from += n;
            if (filled === part.length) {
              multipart ??= await this.#startMultipart();
              await this.#sendPart(multipart, part);
              filled = 0;
            }
          }
        }
      } finally {
        reader.releaseLock();
      }
      const sha256 = hash.digest("hex");
      const target = this.#blobKey(sha256);
      const created = await this.head(target) === null;
      if (!multipart) {
        await (await this.#send(target, {
          method: "PUT",
          body: part.subarray(0, filled),
          headers: UNSIGNED,
        }))
          .body?.cancel();
      } else {
        if (filled > 0) await this.#sendPart(multipart, part.subarray(0, filled));
        await this.#complete(multipart);
        const done = multipart;
        multipart = null;
        try {
          await this.#copy(done.key, target);
        } finally {
          await this.remove(done.key);
        }
      }
      return { sha256, size, created };
    } catch (err) {
      if (multipart) await this.#abort(multipart).catch(() => {});
      await body.cancel().catch(() => {});
      throw err;
    }
  }

  async #startMultipart(): Promise<Multipart> {
    const key = `${this.#prefix}tmp/${crypto.randomUUID()}`;
    const xml = await (await this.#send(key, { method: "POST", query: "uploads" })).text();
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(xml)?.[1];
    if (!uploadId) throw new S3Error(`no UploadId in ${xml.slice(0, 200)}`);
    return { key, uploadId, etags: [] };
  }

  async #sendPart(m: Multipart, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    const n = m.etags.length + 1;
    const res = await this.#send(m.key, {
      method: "PUT",
      body: bytes,
      headers: UNSIGNED,
      query: `partNumber=${n}&uploadId=${encodeURIComponent(m.uploadId)}`,
    });
    await res.body?.cancel();
    const etag = res.headers.get("etag");
    if (!etag) throw new S3Error(`part ${n} of ${m.key}: no ETag`);
    m.etags.push(etag);
  }

  async #complete(m: Multipart): Promise<void> {
    const parts = m.etags.map((etag, i) =>
      `<Part><PartNumber>${i + 1}</PartNumber><ETag>${escapeXml(etag)}</ETag></Part>`
    ).join("");
    const res = await this.#send(m.key, {
      method: "POST",
      query: `uploadId=${encodeURIComponent(m.uploadId)}`,
      body: `<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`,
    });
    // S3 may answer 200 and report the failure in the body.
    const text = await res.text();
    if (text.includes("<Error>")) throw new S3Error(`completing ${m.key}: ${text.slice(0, 300)}`);
  }

  async #abort(m: Multipart): Promise<void> {
    await (await this.#send(m.key, {
      method: "DELETE",
      query: `uploadId=${encodeURIComponent(m.uploadId)}`,
    }, [200, 204, 404])).body?.cancel();
  }

  async #copy(from: string, to: string): Promise<void> {
    const source = `/${this.#bucket}/${from.split("/").map(encodeURIComponent).join("/")}`;
    const res = await this.#send(to, {
      method: "PUT",
      headers: { "x-amz-copy-source": source },
    });
    const text = await res.text();
    if (text.includes("<Error>")) throw new S3Error(`copying ${from}: ${text.slice(0, 300)}`);
  }

  async stat(sha256: string): Promise<BlobInfo | null> {
    if (!SHA256_HEX.test(sha256)) return null;
    const head = await this.head(this.#blobKey(sha256));
    return head ? { sha256, size: head.size } : null;
  }

  async read(
    sha256: string,
    range: { start?: number; end?: number } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const { body } = await this.#ranged(sha256, range);
    return byteStream(body);
  }

  async bytes(
    sha256: string,
    range: { start?: number; end?: number } = {},
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    const { body, length } = await this.#ranged(sha256, range);
    try {
      bufferFor(length, into);
    } catch (err) {
      await body.cancel();
      throw err;
    }
    return await readExactly(body, length, `blob ${sha256}`, into);
  }

  /** A ranged `GET` of the blob: its body, and how many bytes the range holds. */
  async #ranged(
    sha256: string,
    { start = 0, end }: { start?: number; end?: number },
  ): Promise<{ body: ReadableStream<Uint8Array>; length: number }> {
    if (!SHA256_HEX.test(sha256)) throw new NotFoundError("blob", sha256);
    const key = this.#blobKey(sha256);
    const from = Math.max(0, start);
    const empty = async () => {
      if (await this.head(key) === null) throw new NotFoundError("blob", sha256);
      return { body: new Blob([]).stream(), length: 0 };
    };
    if (end !== undefined && end <= from) return await empty();
    const headers: Record<string, string> = {};
    if (from > 0 || end !== undefined) {
      headers.range = `bytes=${from}-${end === undefined ? "" : end - 1}`;
    }
    const res = await this.#send(key, { headers }, [200, 206, 404, 416]);
    if (res.status === 404) {
      await res.body?.cancel();
      throw new NotFoundError("blob", sha256);
    }
    // Past the end (or any range of an empty object).
    if (res.status === 416 || !res.body) {
      await res.body?.cancel();
      return await empty();
    }
    // What was served: HTTP lets a server ignore `Range` (200) or serve more than asked
    // (s3rver serves all of `bytes=0-0`).
    const served = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
    const at = res.status === 206 && served ? Number(served[1]) : 0;
    const total = served ? Number(served[3]) : Number(res.headers.get("content-length"));
    const length = Math.max(0, Math.min(end ?? total, total) - from);
    const sent = Number(res.headers.get("content-length"));
    const body = watchIdle(res.body, this.#timeoutMs, key);
    if (at === from && sent === length) return { body, length };
    return { body: body.pipeThrough(slice(from - at, length)), length };
  }

  async collect(sha256: string, { graceMs }: { graceMs: number }): Promise<boolean> {
    if (!SHA256_HEX.test(sha256)) return false;
    const key = this.#blobKey(sha256);
    const head = await this.head(key);
    if (!head || head.modified > Date.now() - graceMs) return false;
    await this.remove(key);
    return true;
  }
}

interface Multipart {
  key: string;
  uploadId: string;
  etags: string[];
}

/** A request to the bucket failed. */
export class S3Error extends Error {
  override name = "S3Error";
}

/**
 * `body` failing with an `S3Error` when no bytes arrive for `ms` (the connection is dropped):
 * a read of an object whose bytes stop coming fails, and its job is retried, rather than
 * waiting for its handler's time limit.
 */
function watchIdle(
  body: ReadableStream<Uint8Array>,
  ms: number,
  key: string,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new S3Error(`GET ${key}: no bytes for ${ms} ms`)), ms);
      });
      try {
        const r = await Promise.race([reader.read(), idle]);
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (err) {
        await reader.cancel(err).catch(() => {});
        throw err;
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** The wait before attempt `attempt + 1`: 100 ms doubling, jittered down to half. */
function retryPause(attempt: number): Promise<void> {
  const ms = 100 * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function escapeXml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/**
 * `body` as a byte stream: a reader that brings its own buffer is read into (the dataset
 * splitter reuses one), not handed the network's chunks.
 */
function byteStream(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let rest: Uint8Array = new Uint8Array(0);
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: 256 * 1024,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      while (rest.byteLength === 0) {
        const r = await reader.read();
        if (r.done) {
          controller.close();
          request.respond(0);
          return;
        }
        rest = r.value;
      }
      const n = Math.min(rest.byteLength, view.byteLength);
      new Uint8Array(view.buffer, view.byteOffset, n).set(rest.subarray(0, n));
      rest = rest.subarray(n);
      request.respond(n);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** The `length` bytes from `from` of a stream. */
function slice(from: number, length: number): TransformStream<Uint8Array, Uint8Array> {
  let at = 0;
  const end = from + length;
  return new TransformStream({
    transform(chunk, controller) {
      const lo = Math.max(from - at, 0);
      const hi = Math.min(end - at, chunk.byteLength);
      if (hi > lo) controller.enqueue(chunk.subarray(lo, hi));
      at += chunk.byteLength;
    },
  });
}
