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
