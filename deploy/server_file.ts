/**
 * `DATA_DIR/server.json`: where the server that holds an embedded data directory listens. The
 * embedded database has one user at a time, so a command line tool (`deno task run`) that finds
 * it, with a live pid and an answering health check, goes through that server's API instead of
 * opening the directory itself.
 */
import { join } from "node:path";

/** What the server writes once it listens. */
export interface ServerFile {
  pid: number;
  /** Its base URL, reachable from this machine (`http://127.0.0.1:8000`). */
  url: string;
}

const FILE = "server.json";

/** The URL a client on this machine uses for a listener on `hostname`. */
export function localUrl(hostname: string, port: number): string {
  const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "[::1]" : hostname;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}

/** Writes the file for this process; the returned function removes it (if still this pid's). */
export async function writeServerFile(dataDir: string, url: string): Promise<() => Promise<void>> {
  const path = join(dataDir, FILE);
  await Deno.mkdir(dataDir, { recursive: true });
  // Written whole under another name then renamed: a reader never sees half of it.
  const tmp = `${path}.${Deno.pid}`;
  await Deno.writeTextFile(tmp, JSON.stringify({ pid: Deno.pid, url } satisfies ServerFile));
  await Deno.rename(tmp, path);
  return async () => {
    const current = await readServerFile(dataDir);
    if (current?.pid === Deno.pid) await Deno.remove(path).catch(() => {});
  };
}

/** The file's content, or null when there is none or it does not parse. */
export async function readServerFile(dataDir: string): Promise<ServerFile | null> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(join(dataDir, FILE)));
    if (typeof parsed?.pid === "number" && typeof parsed?.url === "string") {
      return { pid: parsed.pid, url: parsed.url };
    }
    return null;
  } catch {
    return null;
  }
}
