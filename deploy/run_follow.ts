/**
 * Following a job to its end for `deno task run`: its server-sent events (`GET
 * /jobs/:id/events`), drawn as a progress bar with the handler's messages.
 */

/** What the CLI reads of a job. */
export interface JobSeen {
  id: string;
  status: string;
  progress: number;
  progressMessage: string | null;
  result?: unknown;
  error?: { code?: string; message?: string } | null;
  pipeline?: { done: number | null; total: number | null; unit: string | null } | null;
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** Calls the API: a path under `/api/v1` and a request; answers as `fetch` does. */
export type ApiFetch = (path: string, init?: RequestInit) => Promise<Response>;

/** Events of one SSE response body, as `{ event, data }`. */
async function* sseEvents(body: ReadableStream<Uint8Array>) {
  let buffer = "";
  for await (const text of body.pipeThrough(new TextDecoderStream())) {
    buffer += text.replaceAll("\r\n", "\n");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

/**
 * Follows job `id` until it ends and returns its last view; `onUpdate` gets every change. A
 * stream that closes early (a restarted server) is opened again.
 */
export async function followJob(
  api: ApiFetch,
  id: string,
  onUpdate: (job: JobSeen) => void,
): Promise<JobSeen> {
  for (let attempt = 0;; attempt++) {
    const res = await api(`/jobs/${encodeURIComponent(id)}/events`, {
      headers: { accept: "text/event-stream" },
    });
    if (!res.ok || !res.body) throw await apiError(res);
    let last: JobSeen | null = null;
    for await (const { data } of sseEvents(res.body)) {
      last = JSON.parse(data) as JobSeen;
      onUpdate(last);
      if (TERMINAL.has(last.status)) {
        await res.body.cancel().catch(() => {});
        return last;
      }
    }
    if (attempt >= 20) throw new Error(`the events of job ${id} ended before the job did`);
    await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
  }
}

/** An API answer that is not 2xx, as an error carrying its code. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = "ApiError";
  }
}

export async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const { error } = JSON.parse(text) as { error: { code: string; message: string } };
    return new ApiError(res.status, error.code, error.message);
  } catch {
    return new ApiError(res.status, `HTTP_${res.status}`, text.slice(0, 500) || res.statusText);
  }
}

/** Writes progress to a stream: a bar redrawn in place on a terminal, plain lines otherwise. */
export class ProgressView {
  readonly #write: (s: string) => void;
  readonly #tty: boolean;
  readonly #width: number;
  #last = "";
  #drawn = false;

  constructor(
    { write, tty, width = 30 }: { write: (s: string) => void; tty: boolean; width?: number },
  ) {
    this.#write = write;
    this.#tty = tty;
    this.#width = width;
  }

  /** Shows `job`'s progress when it changed. */
  update(job: JobSeen): void {
    const pct = Math.max(0, Math.min(100, Math.round(job.progress)));
    const p = job.pipeline;
    const counted = p && p.total !== null && p.done !== null
      ? ` (${p.done}/${p.total}${p.unit ? ` ${p.unit}` : ""})`
      : "";
    const text = `${job.status} ${String(pct).padStart(3)}%${counted}${
      job.progressMessage ? `  ${job.progressMessage}` : ""
    }`;
    if (text === this.#last) return;
    this.#last = text;
    if (!this.#tty) return this.#write(text + "\n");
    const filled = Math.round((pct / 100) * this.#width);
    const bar = "█".repeat(filled) + "░".repeat(this.#width - filled);
    this.#write(`\r\x1b[2K${bar} ${text}`.slice(0, 300));
    this.#drawn = true;
  }

  /** Ends the bar's line. */
  end(): void {
    if (this.#drawn) this.#write("\n");
    this.#drawn = false;
  }
}
