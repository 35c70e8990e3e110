/**
 * A long-task detector for a server under a benchmark, loaded before `main.ts` with
 * `deno run --preload bench/stall_log.ts` when `STALL_LOG` names a file (the benchmarks add both:
 * `bench/api_under_load.ts --stalls DIR`). A timer due every `TICK_MS` notes each turn that came
 * more than `STALL_MS` late: the main thread ran something else (or waited for a core) that long.
 * Each line of the file is JSON: `{"stall":[startMs, endMs]}` in epoch milliseconds
 * (`performance.timeOrigin + performance.now()`, comparable with another process's `Date.now()`).
 * The first line, `{"marker":[startMs, endMs]}`, is a busy loop of `stallLogMarker` the length of
 * `MARKER_MS`: found in a CPU profile of the same process (`--cpu-prof`), it gives the offset from
 * the profile's clock to epoch milliseconds (`bench/stall_attribution.ts`).
 */
const path = Deno.env.get("STALL_LOG");
const TICK_MS = 5;
const STALL_MS = 20;
const MARKER_MS = 30;

const now = () => performance.timeOrigin + performance.now();

function stallLogMarker(): [number, number] {
  const start = now();
  let x = 0;
  while (now() - start < MARKER_MS) x += Math.sqrt(x + 1);
  return [start, now() + (x < 0 ? 1 : 0)];
}

if (path) {
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const write = (o: unknown) => file.writeSync(enc.encode(JSON.stringify(o) + "\n"));
  write({ marker: stallLogMarker() });
  let last = now();
  const timer = setInterval(() => {
    const t = now();
    if (t - last > TICK_MS + STALL_MS) write({ stall: [last + TICK_MS, t] });
    last = t;
  }, TICK_MS);
  Deno.unrefTimer(timer);
}

/**
 * With `PG_TIMING_LOG` (a file) on a server using node-postgres: each job read by id
 * (`readJobs`) is timed in parts, one JSON line each,
 * `{"read":[call, acquired, done, waiting, total, idle, serverMs]}`: epoch ms of the call, of
 * the pool handing it a connection and of its answer; the pool's waiters, connections and idle
 * connections at the call; and what the database server logged as the statement's duration
 * (`serverMs`, null when under the server's `log_min_duration_statement`, which the benchmark
 * sets with `client_min_messages = log` in the connection's options). Every connection asked
 * of the pool while none was idle and the pool was full is a line `{"wait":[call, acquired]}`.
 */
const pgPath = Deno.env.get("PG_TIMING_LOG");
if (pgPath && Deno.env.get("DATABASE_URL")) {
  const { default: pg } = await import("pg");
  const file = Deno.openSync(pgPath, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const write = (o: unknown) => file.writeSync(enc.encode(JSON.stringify(o) + "\n"));
  // deno-lint-ignore no-explicit-any
  type Any = any;
  const Pool = pg.Pool.prototype as Any;
  const connect = Pool.connect;
  Pool.connect = function (this: Any, cb?: Any) {
    const full = this.idleCount === 0 && this.totalCount >= this.options.max;
    if (!full) return connect.call(this, cb);
    const call = now();
    if (cb) {
      return connect.call(this, (err: Any, client: Any, done: Any) => {
        write({ wait: [call, now()] });
        cb(err, client, done);
      });
    }
    return connect.call(this).then((client: Any) => {
      write({ wait: [call, now()] });
      return client;
    });
  };
  const query = Pool.query;
  Pool.query = function (this: Any, text: Any, values?: Any, cb?: Any) {
    if (typeof text !== "string" || !text.includes("WHERE id = ANY($1::text[])")) {
      return query.call(this, text, values, cb);
    }
    const call = now();
    const at = [this.waitingCount, this.totalCount, this.idleCount];
    let acquired = 0;
    let serverMs: number | null = null;
    const onNotice = (msg: Any) => {
      const m = /duration: ([\d.]+) ms/.exec(String(msg?.message ?? ""));
      if (m) serverMs = (serverMs ?? 0) + Number(m[1]);
    };
    let client: Any = null;
    // deno-lint-ignore no-this-alias
    const pool = this;
    const own = pool.connect;
    // `query` asks for its connection at once: this call only.
    pool.connect = (cb2: Any) => {
      pool.connect = own;
      return own.call(pool, (err: Any, c: Any, done: Any) => {
        acquired = now();
        client = c;
        c?.on("notice", onNotice);
        cb2(err, c, done);
      });
    };
    const p = query.call(this, text, values, cb);
    const end = () => {
      client?.removeListener("notice", onNotice);
      write({ read: [call, acquired, now(), ...at, serverMs] });
    };
    p?.then?.(end, end);
    return p;
  };
}
