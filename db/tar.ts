/**
 * A streaming tar (POSIX ustar) writer and reader, for backups of the embedded data directory:
 * regular files and directories only, names up to 255 bytes (split into prefix and name),
 * sizes up to 8 GiB. Nothing is held but one entry's header; bodies stream.
 */

/** A file to write (its path inside the archive, its size, and its bytes), or a directory. */
export type TarSource = {
  name: string;
  size: number;
  /** Modification time. @default now */
  mtime?: Date;
  body: () => Promise<ReadableStream<Uint8Array>> | ReadableStream<Uint8Array>;
} | { name: string; directory: true; mtime?: Date };

/** A file read from an archive. Read or cancel `body` before asking for the next entry. */
export interface TarEntry {
  name: string;
  size: number;
  type: "file" | "directory";
  body: ReadableStream<Uint8Array>;
}

/** An archive that does not parse, or asks for a path outside its root. */
export class TarError extends Error {
  override readonly name = "TarError";
}

const BLOCK = 512;
const MAX_SIZE = 8 * 1024 ** 3 - 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The archive of `sources`, in order, as a byte stream. */
export function writeTar(sources: AsyncIterable<TarSource> | Iterable<TarSource>): ReadableStream<
  Uint8Array
> {
  const iterator =
    (Symbol.asyncIterator in sources
      ? (sources as AsyncIterable<TarSource>)[Symbol.asyncIterator]()
      : (sources as Iterable<TarSource>)[Symbol.iterator]()) as
        | AsyncIterator<TarSource>
        | Iterator<TarSource>;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let left = 0;
  let padding = 0;
  return new ReadableStream<Uint8Array>({
    // Each pull enqueues something or closes: a pull that returns empty-handed is not
    // called again.
    async pull(controller) {
      for (;;) {
        if (reader) {
          const { done, value } = await reader.read();
          if (!done) {
            if (value.length > left) throw new TarError("a file grew while it was archived");
            if (value.length === 0) continue;
            left -= value.length;
            controller.enqueue(value);
            return;
          }
          reader = null;
          if (left !== 0) throw new TarError("a file shrank while it was archived");
          if (padding) {
            controller.enqueue(new Uint8Array(padding));
            return;
          }
          continue;
        }
        const next = await iterator.next();
        if (next.done) {
          controller.enqueue(new Uint8Array(BLOCK * 2));
          controller.close();
          return;
        }
        const source = next.value;
        if ("directory" in source) {
          controller.enqueue(header(source.name, 0, source.mtime ?? new Date(), true));
          return;
        }
        controller.enqueue(header(source.name, source.size, source.mtime ?? new Date()));
        left = source.size;
        padding = (BLOCK - (source.size % BLOCK)) % BLOCK;
        reader = (await source.body()).getReader();
        return;
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason);
      await iterator.return?.();
    },
  }, { highWaterMark: 0 });
}

function header(name: string, size: number, mtime: Date, directory = false): Uint8Array {
  if (size < 0 || size > MAX_SIZE || !Number.isInteger(size)) {
    throw new TarError(`${name}: size ${size} cannot be archived`);
  }
  const bytes = encoder.encode(name);
  let prefix = new Uint8Array(0), base = bytes;
  if (bytes.length > 100) {
    // Split at a slash so that the prefix is at most 155 bytes and the name at most 100.
    let cut = -1;
    for (let i = Math.max(0, bytes.length - 101); i < Math.min(bytes.length, 156); i++) {
      if (bytes[i] === 0x2f) {
        cut = i;
        break;
      }
    }
    if (cut < 0) throw new TarError(`${name}: the path is too long for a tar archive`);
    prefix = bytes.subarray(0, cut);
    base = bytes.subarray(cut + 1);
  }
  const h = new Uint8Array(BLOCK);
  h.set(base, 0);
  field(h, 100, 8, directory ? 0o755 : 0o644);
  field(h, 108, 8, 0);
  field(h, 116, 8, 0);
  field(h, 124, 12, size);
  field(h, 136, 12, Math.floor(mtime.getTime() / 1000));
  h.fill(0x20, 148, 156); // the checksum counts as spaces
  h[156] = directory ? 0x35 : 0x30; // '5': a directory, '0': a regular file
  h.set(encoder.encode("ustar\u000000"), 257);
  h.set(prefix, 345);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(encoder.encode(sum.toString(8).padStart(6, "0") + "\u0000 "), 148);
  return h;
}

function field(h: Uint8Array, at: number, length: number, value: number): void {
  h.set(encoder.encode(value.toString(8).padStart(length - 1, "0") + "\u0000"), at);
}

/**
 * The entries of an archive, in order. Paths are checked: absolute paths, `..` segments and
 * links are refused with {@link TarError}.
 */
export async function* readTar(stream: ReadableStream<Uint8Array>): AsyncGenerator<TarEntry> {
  const input = new ByteReader(stream);
  try {
    for (;;) {
      const h = await input.exactly(BLOCK);
      if (h === null) throw new TarError("the archive ends without its end marker");
      if (h.every((b) => b === 0)) return;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
      if (sum !== octal(h, 148, 8)) throw new TarError("a header's checksum is wrong");
      const name = [text(h, 345, 155), text(h, 0, 100)].filter(Boolean).join("/").replace(
        /\/+$/,
        "",
      );
      const size = octal(h, 124, 12);
      const flag = String.fromCharCode(h[156]!);
      const type = flag === "5" ? "directory" : flag === "0" || flag === "\u0000" ? "file" : null;
      if (type === null) throw new TarError(`${name}: only files and directories are read`);
      if (name.startsWith("/") || name.split("/").some((s) => s === "..")) {
        throw new TarError(`${name}: a path outside the archive's root`);
      }
      let left = size;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (left === 0) return controller.close();
          const chunk = await input.upTo(Math.min(left, 256 * 1024));
          if (chunk === null) throw new TarError(`${name}: the archive ends inside the file`);
          left -= chunk.length;
          controller.enqueue(chunk);
        },
      }, { highWaterMark: 0 });
      yield { name, size, type, body };
      // Whatever the caller left of the body is skipped, then the padding.
      while (left > 0) {
        const chunk = await input.upTo(Math.min(left, 256 * 1024));
        if (chunk === null) throw new TarError(`${name}: the archive ends inside the file`);
        left -= chunk.length;
      }
      const padding = (BLOCK - (size % BLOCK)) % BLOCK;
      if (padding && (await input.exactly(padding)) === null) {
        throw new TarError("the archive ends inside a file's padding");
      }
    }
  } finally {
    await input.cancel();
  }
}

function text(h: Uint8Array, at: number, length: number): string {
  const slice = h.subarray(at, at + length);
  const end = slice.indexOf(0);
  return decoder.decode(end < 0 ? slice : slice.subarray(0, end));
}

function octal(h: Uint8Array, at: number, length: number): number {
  const t = text(h, at, length).trim();
  if (!/^[0-7]*$/.test(t)) throw new TarError("a header's number is not octal");
  return t ? parseInt(t, 8) : 0;
}

/** Reads exact byte counts from a stream of chunks of any size. */
class ByteReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: Uint8Array = new Uint8Array(0);

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #fill(): Promise<boolean> {
    const { done, value } = await this.#reader.read();
    if (done) return false;
    this.#buffer = this.#buffer.length ? concat(this.#buffer, value) : value;
    return true;
  }

  /** Exactly `n` bytes, or null at the end of the stream. */
  async exactly(n: number): Promise<Uint8Array | null> {
    while (this.#buffer.length < n) if (!(await this.#fill())) return null;
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** Between 1 and `n` bytes, or null at the end of the stream. */
  async upTo(n: number): Promise<Uint8Array | null> {
    if (this.#buffer.length === 0 && !(await this.#fill())) return null;
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(out.length);
    return out;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
