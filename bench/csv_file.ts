/**
 * The generated CSV of the dataset benchmarks (bench/ingest.ts, bench/edge_memory.ts): 9 mixed
 * columns, the same bytes for a given size on every run (a seeded generator).
 */
import { seeded } from "../tests/fixtures/seeded.ts";

/** Where the `mb` MB file lives (under /tmp, reused by every benchmark that asks for it). */
export function benchCsvPath(mb: number): string {
  return `/tmp/troupe-bench-v2-${mb}mb.csv`;
}

/**
 * The `mb` MB file, written once: ids, ints, floats, categories, dates, booleans, text, nulls.
 * Returns its path, size and row count.
 */
export async function benchCsv(mb: number): Promise<{ path: string; bytes: number; rows: number }> {
  const FILE = benchCsvPath(mb);
  const TARGET = mb * 1e6;
  try {
    const size = (await Deno.stat(FILE)).size;
    const rows = Number(await Deno.readTextFile(`${FILE}.rows`));
    if (size > 0 && rows > 0) return { path: FILE, bytes: size, rows };
  } catch { /* generate */ }
  const file = await Deno.open(FILE, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const cities = ["Paris", "Lyon", "Berlin", "Köln", "Madrid", "Roma", "Oslo", "Wien"];
  const rand = seeded(42);
  let bytes = 0;
  let rows = 0;
  let buf = "id,user,amount,quantity,city,day,active,score,note\n";
  while (bytes < TARGET) {
    for (let i = 0; i < 5000; i++, rows++) {
      const amount = rand() < 0.02 ? "" : (rand() * 1000).toFixed(2);
      const day = `2024-${String(1 + Math.floor(rand() * 12)).padStart(2, "0")}-${
        String(1 + Math.floor(rand() * 28)).padStart(2, "0")
      }`;
      const note = rand() < 0.1 ? `"note, with comma ${rows}"` : `note ${rows % 997}`;
      buf += `${rows},u${Math.floor(rand() * 50_000)},${amount},${Math.floor(rand() * 100)},${
        cities[Math.floor(rand() * cities.length)]
      },${day},${rand() < 0.5},${(-Math.log(rand() + 1e-12) * 10).toFixed(4)},${note}\n`;
    }
    const chunk = enc.encode(buf);
    bytes += chunk.length;
    for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
    buf = "";
  }
  file.close();
  await Deno.writeTextFile(`${FILE}.rows`, String(rows));
  return { path: FILE, bytes, rows };
}
