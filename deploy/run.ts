/**
 * `deno task run`: runs an actor, or an upload, from the command line and follows its job.
 *
 *   deno task run <actor> ['<json input>']
 *   deno task run dataset --file data.csv ['{"name":"sales","errorPolicy":"fail"}']
 *   deno task run course --file a.pdf --file b.pdf ['{"title":"Physics"}']
 *   deno task run --list
 *
 * Progress goes to stderr (a bar redrawn on a terminal, lines otherwise); the job's result is
 * printed to stdout as JSON. Exit status: 0 succeeded, 1 failed or cancelled (its error code
 * and message on stderr) or refused by the API, 2 bad usage.
 *
 * Where it runs: through the API of the server that holds the embedded data directory (found
 * by `DATA_DIR/server.json`; or `TROUPE_URL`), since an embedded database has one process at
 * a time; otherwise embedded: it opens the database, runs the app's actors in this process
 * until the job ends, and stops. Both ways it calls the same HTTP routes (uploads go through
 * the upload routes), with the key `TROUPE_API_KEY`, else `DEV_API_KEY`, else the embedded dev
 * tenant's key in `DATA_DIR/dev-api-key`.
 */
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { directoryHolder } from "@troupe/runtime/pglite";
import { type Config, ConfigError, drivers, loadConfig } from "./config.ts";
import {
  actorCatalogue,
  listing,
  uploadNamed,
  UPLOADS,
  type UploadTarget,
} from "./run_catalogue.ts";
import {
  ApiError,
  apiError,
  type ApiFetch,
  followJob,
  type JobSeen,
  ProgressView,
} from "./run_follow.ts";
import { readServerFile } from "./server_file.ts";

const USAGE = "usage: deno task run <actor> ['<json input>'] | " +
  "deno task run <dataset|course> --file <path> [--file <path>...] ['<json options>'] | " +
  "deno task run --list";

/** A command line the tool refuses: exit status 2. */
export class UsageError extends Error {}

/** Where the API is: a server's URL, or this process. */
export interface Api {
  fetch: ApiFetch;
  /** Says where, for the first line on stderr. */
  where: string;
  close(): Promise<void>;
}

/** What the command line asks. */
interface Request {
  list: boolean;
  target?: { upload: UploadTarget; files: string[] } | { actor: string };
  input: Record<string, unknown>;
}

/** Parses the arguments; throws `UsageError`. */
export function parseRequest(args: string[]): Request {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { list: { type: "boolean" }, file: { type: "string", multiple: true } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.list) {
    if (positionals.length || values.file) throw new UsageError("--list takes nothing else");
    return { list: true, input: {} };
  }
  const [name, json, ...rest] = positionals;
  if (!name || rest.length) throw new UsageError("name one actor and at most one JSON argument");
  let input: unknown = {};
  if (json !== undefined) {
    try {
      input = JSON.parse(json);
    } catch (err) {
      throw new UsageError(`the input is not JSON: ${(err as Error).message}`);
    }
  }
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new UsageError("the input is a JSON object");
  }
  const files = values.file ?? [];
  const upload = uploadNamed(name);
  if (upload) {
    if (!files.length) throw new UsageError(`${name} is an upload: give --file <path>`);
    if (upload.files === "one" && files.length > 1) {
      throw new UsageError(`${name} takes one --file`);
    }
    return { list: false, target: { upload, files }, input: input as Record<string, unknown> };
  }
  if (files.length) {
    throw new UsageError(
      `--file goes with an upload (${UPLOADS.map((u) => u.names[0]).join(", ")})`,
    );
  }
  return { list: false, target: { actor: name }, input: input as Record<string, unknown> };
}

/** The API key: TROUPE_API_KEY, DEV_API_KEY, or the embedded dev tenant's saved key. */
export async function apiKey(config: Config, env: Record<string, string>): Promise<string> {
  const key = env.TROUPE_API_KEY?.trim() || config.DEV_API_KEY;
  if (key) return key;
  const saved = await Deno.readTextFile(join(config.DATA_DIR, "dev-api-key")).catch(() => "");
  if (saved.trim()) return saved.trim();
  throw new UsageError(
    "no API key: set TROUPE_API_KEY (a key of the tenant to run as), or DEV_API_KEY",
  );
}

/** A server's API at `base`, with `key`. */
export function remoteApi(base: string, key: string): Api {
  const root = base.replace(/\/+$/, "");
  return {
    where: root,
    fetch: (path, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set("x-api-key", key);
      return fetch(`${root}/api/v1${path}`, { ...init, headers });
    },
    close: () => Promise.resolve(),
  };
}

async function answers(base: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/api/v1/health`, { signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.status < 500 || res.status === 503;
  } catch {
    return false;
  }
}

/**
 * The running server holding the data directory (or TROUPE_URL), when there is one; null when
 * nothing holds it. A holder that does not answer is an error: its database cannot be opened.
 */
export async function findServer(
  config: Config,
  env: Record<string, string>,
): Promise<string | null> {
  if (env.TROUPE_URL?.trim()) return env.TROUPE_URL.trim();
  const file = await readServerFile(config.DATA_DIR);
  if (file && await directoryHolderIs(config, file.pid) && await answers(file.url)) return file.url;
  if (drivers(config).database !== "pglite") return null;
  const holder = await directoryHolder(join(config.DATA_DIR, "pglite"));
  if (holder === null) return null;
  throw new Error(
    `${config.DATA_DIR} is held by process ${holder}, which serves no API this tool can find; ` +
      "wait for it to end, or set TROUPE_URL to its address",
  );
}

/** Whether `pid` still runs (a server file left by a crash names a dead one). */
async function directoryHolderIs(config: Config, pid: number): Promise<boolean> {
  if (drivers(config).database === "pglite") {
    return await directoryHolder(join(config.DATA_DIR, "pglite")) === pid;
  }
  return await Deno.stat(`/proc/${pid}`).then(() => true, () => Deno.build.os !== "linux");
}

/** This process as the server: the app composed over the data directory, called in memory. */
async function embeddedApi(config: Config, env: Record<string, string>): Promise<Api> {
  const { compose } = await import("../main.ts");
  // The job's record has what its handler logged as failure; stdout is the result's.
  const troupe = await compose({
    ...config,
    LOG_LEVEL: env.LOG_LEVEL ? config.LOG_LEVEL : "error",
  });
  try {
    const key = await apiKey(config, env);
    return {
      where: `embedded (${troupe.db.dialect})`,
      fetch: async (path, init = {}) => {
        const headers = new Headers(init.headers);
        headers.set("x-api-key", key);
        return await troupe.app.request(`/api/v1${path}`, { ...init, headers });
      },
      close: () => troupe.close(),
    };
  } catch (err) {
    await troupe.close();
    throw err;
  }
}

/** Sends the files of an upload to its route; returns the route's answer (with `jobId`). */
async function upload(
  api: Api,
  target: UploadTarget,
  files: string[],
  options: Record<string, unknown>,
): Promise<Record<string, unknown> & { jobId: string }> {
  const parsed = target.options.safeParse(options);
  if (!parsed.success) {
    throw new UsageError(`bad options: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  }
  let res: Response;
  if (target.kind === "dataset") {
    const path = files[0]!;
    const query = new URLSearchParams({ name: basename(path) });
    for (const [k, v] of Object.entries(options)) {
      query.set(k, typeof v === "string" ? v : JSON.stringify(v));
    }
    const file = await Deno.open(path);
    const size = (await file.stat()).size;
    res = await api.fetch(`${target.path}?${query}`, {
      method: "POST",
      headers: { "content-type": contentTypeOf(path), "content-length": String(size) },
      body: file.readable,
      duplex: "half",
    } as RequestInit);
  } else {
    const form = new FormData();
    if (typeof options.title === "string") form.set("title", options.title);
    for (const path of files) {
      form.append(
        "files",
        new File([await Deno.readFile(path)], basename(path), { type: "application/pdf" }),
      );
    }
    res = await api.fetch(target.path, { method: "POST", body: form });
  }
  if (!res.ok) throw await apiError(res);
  return await res.json();
}

const TYPES: [RegExp, string][] = [
  [/\.gz$/i, "application/gzip"],
  [/\.tsv$/i, "text/tab-separated-values"],
  [/\.(ndjson|jsonl)$/i, "application/x-ndjson"],
  [/\.json$/i, "application/json"],
  [/\.xlsx$/i, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
];

function contentTypeOf(path: string): string {
  return TYPES.find(([re]) => re.test(path))?.[1] ?? "text/csv";
}

/** Runs the command line; returns the exit status. */
export async function main(
  args: string[],
  env: Record<string, string> = Deno.env.toObject(),
): Promise<number> {
  let api: Api | null = null;
  try {
    const request = parseRequest(args);
    const config = loadConfig(env);
    const actors = await actorCatalogue(config);
    if (request.list) {
      console.log(listing(actors));
      return 0;
    }
    const target = request.target!;
    if ("actor" in target) {
      const def = actors.find((a) => a.name === target.actor);
      if (!def) throw new UsageError(`no actor named "${target.actor}" (see --list)`);
      if (!def.exposed) {
        throw new UsageError(`${def.name} is run by its pipeline, not from here (see --list)`);
      }
    }
    const server = await findServer(config, env);
    api = server ? remoteApi(server, await apiKey(config, env)) : await embeddedApi(config, env);
    console.error(`troupe run: via ${api.where}`);
    let started: Record<string, unknown> & { jobId: string };
    if ("upload" in target) {
      started = await upload(api, target.upload, target.files, request.input);
    } else {
      const res = await api.fetch(`/actors/${encodeURIComponent(target.actor)}/jobs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: request.input }),
      });
      if (!res.ok) throw await apiError(res);
      started = await res.json();
    }
    const view = new ProgressView({
      write: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
      tty: Deno.stderr.isTerminal(),
    });
    let job: JobSeen;
    try {
      job = await followJob(api.fetch, started.jobId, (j) => view.update(j));
    } finally {
      view.end();
    }
    if (job.status === "succeeded") {
      const { jobId: _, status: __, ...ids } = started;
      const shown = "upload" in target ? { ...ids, jobId: job.id, result: job.result } : job.result;
      console.log(JSON.stringify(shown ?? null, null, 2));
      return 0;
    }
    const code = job.error?.code ?? job.status.toUpperCase();
    console.error(`troupe run: job ${job.id} ${job.status}: ${code}: ${job.error?.message ?? ""}`);
    return 1;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`troupe run: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof ApiError) {
      console.error(`troupe run: ${err.code}: ${err.message}`);
      return 1;
    }
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    console.error(`troupe run: ${(err as Error).message ?? err}`);
    return 1;
  } finally {
    await api?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
