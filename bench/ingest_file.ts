/**
 * The ingest benches' CSV file: about `mb` MB of 9 mixed columns (ids, ints, floats,
 * categories, dates, booleans, text, nulls), generated once under /tmp by a seeded generator
 * and reused (its row count beside it in `.rows`).
 */

/** Where the `mb` MB file lives. */
export function ingestFilePath(mb: number): string {
  return `/tmp/troupe-bench-v2-${mb}mb.csv`;
}

/** Writes the file once: ids, ints, floats, categories, dates, booleans, text, nulls. */
export async function ingestFile(mb: number): Promise<{ bytes: number; rows: number }> {
  const FILE = ingestFilePath(mb);
  const TARGET = mb * 1e6;
  try {
    const size = (await Deno.stat(FILE)).size;
    const rows = Number(await Deno.readTextFile(`${FILE}.rows`));
    if (size > 0 && rows > 0) return { bytes: size, rows };
  } catch { /* generate */ }
  const file = await Deno.open(FILE, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const cities = ["Paris", "Lyon", "Berlin", "Köln", "Madrid", "Roma", "Oslo", "Wien"];
  // mulberry32: a real 32-bit generator (a float LCG loses its low bits and repeats).
  let x = 42;
  const rand = () => {
    x = (x + 0x6d2b79f5) | 0;
    let t = Math.imul(x ^ (x >>> 15), 1 | x);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
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
  return { bytes, rows };
}
