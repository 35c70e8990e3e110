/**
 * The dataset workload end to end through `app.request()`: upload (raw and multipart), the
 * chunk pipeline on a real runtime (embedded drivers and files on disk; or, with
 * TEST_API_DRIVERS=production, Neon + QStash + Upstash stand-ins and blobs in PostgreSQL),
 * profiles, queries, exports, the PDF report, deletion, and bad input.
 */
import assert from "node:assert/strict";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, apiCall, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import {
  countBlobs,
  countRows,
  DATASET_ENDS,
  settledBody,
  sseReader,
  stalledBody,
  waitFor,
  within,
} from "../tests/harness.ts";
import {
  bytesOf,
  gzipBomb,
  millionColumnCsv,
  wideCsv,
  wideNdjson,
} from "../tests/hostile/input_files.ts";
import { pythonCsv } from "../actors/datasets/ingest/test_util.ts";
import { hugeFieldForm, part, trickleBody } from "../tests/hostile/http_attacks.ts";
import { localDatasetAdapters } from "../tests/local_adapters.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;

interface World extends ApiWorld {
  key: string;
  otherKey: string;
  blobs: BlobStore;
  /**
   * While set, the pipeline's reads of stored files wait for `until`: `current` holds the
   * split steps' (streamed) reads; `bytes` lets `allow` ranged reads (chunks, sniffing) through
   * and holds the ones after.
   */
  hold: {
    current: { until: Promise<void>; held: () => void } | null;
    bytes: { allow: number; until: Promise<void> } | null;
  };
  /** What failed uploads may have left behind: temporary files or orphan parts. */
  leftovers(): Promise<number>;
  /** What is kept of uploads: datasets, jobs, blobs. */
  kept(): Promise<{ datasets: number; jobs: number; blobs: number }>;
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-datasets-" });
    let blobs!: BlobStore;
    const hold: World["hold"] = { current: null, bytes: null };
    const w = await openApiWorld((tdb) => {
      blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
      const store = blobs;
      const gated = new Proxy(store, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target);
          if (typeof value !== "function") return value;
          if (prop === "bytes") {
            return async (...args: Parameters<BlobStore["bytes"]>) => {
              if (hold.bytes && hold.bytes.allow-- <= 0) await hold.bytes.until;
              return await store.bytes(...args);
            };
          }
          if (prop !== "read") return value.bind(target);
          return async (...args: Parameters<BlobStore["read"]>) => {
            if (hold.current) {
              hold.current.held();
              await hold.current.until;
            }
            return await store.read(...args);
          };
        },
      });
      // Small chunks, split steps and merge pages, so files here take several of each.
      return datasetActors({
        ...localDatasetAdapters(),
        db: tdb.db,
        blobs: gated,
        chunkBytes: 16 * 1024,
        splitStepChunks: 2,
        mergePage: 2,
      });
    }, (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      // A client is let go after 1 s without bytes, or under 4 KB/s over 1.5 s.
      datasets: {
        db: tdb.db,
        blobs,
        maxBytes: 2_000_000,
        uploads: { idleMs: 1000, minBytesPerSecond: 4000, rateWindowMs: 1500 },
        maxHeaderBytes: 64 * 1024,
      },
    }));
    const key = (await w.tenants.createKey((await w.tenants.createTenant("acme")).id)).key;
    const otherKey = (await w.tenants.createKey((await w.tenants.createTenant("other")).id)).key;
    const close = w.close;
    return {
      ...w,
      key,
      otherKey,
      blobs,
      hold,
      async leftovers() {
        if (blobs.kind === "postgres") {
          const rows = await w.tdb.db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM troupe_blob_parts p WHERE NOT EXISTS
               (SELECT 1 FROM troupe_blobs b WHERE b.upload_id = p.upload_id)`,
          );
          return rows[0]!.n;
        }
        let n = 0;
        for await (const _ of Deno.readDir(`${dir}/tmp`)) n++;
        return n;
      },
      async kept() {
        return {
          datasets: await countRows(w.tdb.db, "troupe_datasets"),
          jobs: await countRows(w.tdb.db, "troupe_jobs"),
          blobs: await countBlobs(blobs, w.tdb.db, dir),
        };
      },
      async close() {
        await close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

async function call(path: string, init: RequestInit & { key?: string } = {}) {
  const w = await open();
  return await apiCall(w.app, init.key ?? w.key, path, init);
}

/** A CSV with mixed types, quoted delimiters and newlines, nulls and a duplicate header. */
function salesCsv(rows: number): string {
  const lines = ["id,city,amount,active,day,note,note"];
  const cities = ["Paris", "Lyon", "Köln", "Zürich"];
  for (let i = 1; i <= rows; i++) {
    const amount = i % 10 === 0 ? "" : (i * 1.5).toFixed(2);
    const note = i % 7 === 0 ? `"multi\nline, with comma"` : `note ${i}`;
    lines.push(
      `${i},${cities[i % 4]},${amount},${i % 3 === 0 ? "yes" : "no"},2024-02-${
        String((i % 28) + 1).padStart(2, "0")
      },${note},x`,
    );
  }
  return lines.join("\r\n") + "\r\n";
}

async function upload(body: BodyInit, query: string, contentType = "text/csv", key?: string) {
  return await call(`/api/datasets?${query}`, {
    method: "POST",
    body,
    headers: { "content-type": contentType },
    ...(key ? { key } : {}),
  });
}

const settled = (id: string) =>
  settledBody(() => call(`/api/datasets/${id}`), DATASET_ENDS, { what: `dataset ${id}` });

Deno.test(
  { name: "datasets: a CSV is split, profiled, queryable and exportable", ...opts },
  async () => {
    const N = 1500;
    const csv = salesCsv(N);
    const up = await upload(csv, "name=sales");
    assert.equal(up.status, 202, JSON.stringify(up.body));
    assert.ok(up.body.datasetId && up.body.jobId);
    const d = await settled(up.body.datasetId);
    assert.equal(d.status, "ready", JSON.stringify(d.error));
    assert.equal(d.rowCount, N);
    assert.ok(d.progress.chunksTotal > 3, `split into ${d.progress.chunksTotal} chunks`);
    assert.equal(d.progress.percent, 100);
    const col = (name: string) => d.columns.find((c: { name: string }) => c.name === name);
    assert.deepEqual(d.columns.map((c: { name: string }) => c.name), [
      "id",
      "city",
      "amount",
      "active",
      "day",
      "note",
      "note_2",
    ]);
    assert.equal(col("id").type, "integer");
    assert.equal(col("amount").type, "float");
    assert.equal(col("active").type, "boolean");
    assert.equal(col("day").type, "date");
    assert.equal(col("city").type, "string");
    const id = col("id").profile;
    assert.equal(id.count, N);
    assert.equal(id.min, 1);
    assert.equal(id.max, N);
    assert.ok(Math.abs(id.mean - (N + 1) / 2) < 1e-9);
    assert.ok(Math.abs(id.distinct - N) / N < 0.03, `distinct ${id.distinct}`);
    assert.equal(col("amount").profile.nulls, N / 10);
    assert.equal(col("city").profile.distinct, 4);
    assert.equal(col("city").profile.topValues.length, 4);
    assert.ok(col("amount").profile.histogram.counts.length > 0);

    // Rows: keyset pages over a sort, every row once.
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { rows: { id: number }[]; nextCursor: string | null } } = await call(
        `/api/datasets/${d.id}/rows?limit=400&sort=amount:desc${cursor ? `&cursor=${cursor}` : ""}`,
      );
      seen.push(...page.body.rows.map((r) => r.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.equal(seen.length, N);
    assert.equal(new Set(seen).size, N);
    assert.equal(seen[0], N - 1, "largest amount first (the row divisible by 10 has none)");

    const filtered = await call(
      `/api/datasets/${d.id}/rows?filter=city:eq:Köln&filter=active:eq:true&limit=1000`,
    );
    assert.equal(filtered.status, 200);
    const expected = Array.from({ length: N }, (_, i) => i + 1).filter((i) =>
      i % 4 === 2 && i % 3 === 0
    );
    assert.deepEqual(filtered.body.rows.map((r: { id: number }) => r.id), expected);
    const multi = await call(`/api/datasets/${d.id}/rows?filter=id:eq:7`);
    assert.equal(multi.body.rows[0].note, "multi\nline, with comma");

    const agg = await call(`/api/datasets/${d.id}/aggregate?groupBy=city&metrics=count,sum:id`);
    assert.equal(agg.status, 200);
    assert.equal(agg.body.groups.length, 4);
    assert.equal(
      agg.body.groups.reduce((a: number, g: { count: number }) => a + g.count, 0),
      N,
    );

    const exported = await call(`/api/datasets/${d.id}/export?format=csv`);
    assert.equal(exported.status, 200);
    assert.equal(exported.headers.get("content-disposition"), `attachment; filename="sales.csv"`);
    const text = new TextDecoder().decode(exported.bytes);
    assert.ok(text.startsWith("id,city,amount,active,day,note,note_2\r\n"));
    assert.match(text, /"multi\nline, with comma"/);
    const ndjson = await call(`/api/datasets/${d.id}/export?format=ndjson`);
    assert.equal(ndjson.headers.get("content-disposition"), `attachment; filename="sales.ndjson"`);
    const lines = new TextDecoder().decode(ndjson.bytes).trim().split("\n");
    assert.equal(lines.length, N);
    assert.equal(JSON.parse(lines[0]!).id, 1);

    // The report is a job: 202 until it is stored, then the PDF (datasets_report_test.ts).
    const pdf = await waitFor(async () => {
      const r = await call(`/api/datasets/${d.id}/report.pdf`);
      return r.status === 200 ? r : null;
    }, { timeoutMs: 30_000, what: "the report" });
    assert.equal(pdf.headers.get("content-type"), "application/pdf");
    assert.equal(new TextDecoder().decode(pdf.bytes.slice(0, 5)), "%PDF-");
  },
);

Deno.test({
  name: "datasets: JSON arrays and NDJSON load; a non-array is a clear failure",
  ...opts,
}, async () => {
  const records = Array.from(
    { length: 300 },
    (_, i) => ({ n: i, tag: i % 2 ? "odd" : "even", extra: i > 250 ? { deep: i } : undefined }),
  );
  const json = await upload(JSON.stringify(records), "name=j", "application/json");
  const jd = await settled(json.body.datasetId);
  assert.equal(jd.status, "ready", JSON.stringify(jd.error));
  assert.equal(jd.rowCount, 300);
  assert.deepEqual(jd.columns.map((c: { name: string }) => c.name).sort(), ["extra", "n", "tag"]);
  const nd = await upload(records.map((r) => JSON.stringify(r)).join("\n"), "format=ndjson");
  assert.equal((await settled(nd.body.datasetId)).rowCount, 300);
  const bad = await upload('{"not":"an array"}', "format=json");
  assert.equal(bad.status, 202);
  const failed = await settled(bad.body.datasetId);
  assert.equal(failed.status, "failed");
  assert.match(failed.error.code, /NOT_JSON_ARRAY/i);
});

Deno.test({
  name: "datasets: bad rows are skipped and reported, or fail the dataset with the line",
  ...opts,
}, async () => {
  const csv = "a,b\n1,2\n3\n4,5\n6,7,8\n9,10\n";
  const skip = await settled((await upload(csv, "errorPolicy=skip")).body.datasetId);
  assert.equal(skip.status, "ready");
  assert.equal(skip.rowCount, 4, "the short row is kept");
  assert.equal(skip.skippedRows, 1);
  assert.deepEqual(skip.rowErrors.map((e: { line: number }) => e.line), [5]);
  const fail = await settled((await upload(csv, "errorPolicy=fail")).body.datasetId);
  assert.equal(fail.status, "failed");
  assert.equal(fail.error.line, 5);
});

/** Every row of a dataset, in file order, a page at a time. */
async function allRows(id: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { rows: Record<string, unknown>[]; nextCursor: string | null } } =
      await call(`/api/datasets/${id}/rows?limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
    rows.push(...page.body.rows);
    cursor = page.body.nextCursor;
  } while (cursor);
  return rows;
}

Deno.test({
  name: "datasets: rows with 6 to 9 of 9 fields are all kept, as Python's csv reads them",
  ...opts,
}, async () => {
  const names = Array.from({ length: 9 }, (_, k) => `c${k + 1}`);
  const lines = [names.join(",")];
  for (let i = 0; i < 3000; i++) {
    const width = 6 + (i * 7 % 4);
    lines.push(
      Array.from(
        { length: width },
        (_, k) => k === 0 ? String(i) : k === 2 ? `"t ${i}, x"` : `v${k}`,
      )
        .join(","),
    );
  }
  const csv = lines.join("\n") + "\n";
  const python = await pythonCsv(csv);
  const d = await settled((await upload(csv, "name=ragged")).body.datasetId);
  assert.equal(d.status, "ready", JSON.stringify(d.error));
  assert.equal(d.rowCount, python.length - 1);
  assert.equal(d.skippedRows, 0);
  assert.equal(d.encoding, "utf-8");
  const rows = await allRows(d.id);
  assert.equal(rows.length, python.length - 1);
  rows.forEach((row, i) => {
    const fields = python[i + 1]!;
    const expected = names.map((n, k) =>
      k >= fields.length ? null : n === "c1" ? Number(fields[k]) : fields[k]
    );
    assert.deepEqual(names.map((n) => row[n]), expected, `row ${i}`);
  });
});

Deno.test({
  name: "datasets: a Latin-1 file is read as Windows-1252 under encoding=auto",
  ...opts,
}, async () => {
  const text = "name,city,amount\n" +
    Array.from({ length: 2000 }, (_, i) => `Jürgen ${i},Malmö,${i}\n`).join("") +
    "Zoë,Orléans,5\n";
  const latin1 = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
  const d = await settled((await upload(latin1, "name=latin1")).body.datasetId);
  assert.equal(d.status, "ready", JSON.stringify(d.error));
  assert.equal(d.rowCount, 2001);
  assert.equal(d.encoding, "windows-1252");
  const rows = await allRows(d.id);
  assert.deepEqual(rows[0], { name: "Jürgen 0", city: "Malmö", amount: 0 });
  assert.deepEqual(rows.at(-1), { name: "Zoë", city: "Orléans", amount: 5 });
  assert.ok(rows.every((r) => !String(r.name).includes("\ufffd") && r.city !== "Malm\ufffd"));
});

Deno.test({
  name: "datasets: invalid UTF-8 past the first megabyte fails with INVALID_ENCODING and the line",
  ...opts,
}, async () => {
  const head = "id,city\n" + Array.from({ length: 60_000 }, (_, i) => `${i},Köln ${i}\n`).join("");
  const bytes = new TextEncoder().encode(head);
  assert.ok(bytes.length > 1 << 20);
  const bad = Uint8Array.of(...new TextEncoder().encode("60000,Malm"), 0xf6, 0x0a);
  const file = new Uint8Array(bytes.length + bad.length);
  file.set(bytes);
  file.set(bad, bytes.length);
  const d = await settled((await upload(file, "name=bad-utf8")).body.datasetId);
  assert.equal(d.status, "failed");
  assert.equal(d.error.code, "INVALID_ENCODING");
  assert.equal(d.error.line, 60_002);
  assert.match(d.error.message, /line 60002/);
  assert.match(d.error.message, /encoding/);
});

Deno.test({
  name: "datasets: a TSV with quotes in its text keeps every line; quote= opts in, with warnings",
  ...opts,
}, async () => {
  const lines = ["id\ttitle\tnote"];
  for (let i = 0; i < 3000; i++) {
    // Quotes in text: at a field's start, inside one; and a field that opens a quote it never
    // closes, followed by 50 lines without a quote.
    const plain = i % 500 >= 200;
    const title = i % 50 === 0
      ? `"Quoted" title ${i}`
      : i % 13 === 0 && !plain
      ? `12" vinyl ${i}`
      : `t${i}`;
    const note = i % 500 === 250 ? '"say hi' : i % 7 === 0 && !plain ? 'say "hi"' : "ok";
    lines.push(`${i}\t${title}\t${note}`);
  }
  const tsv = lines.join("\n") + "\n";
  const wcL = tsv.split("\n").length - 1; // what `wc -l` counts
  const python = await pythonCsv(tsv, { delimiter: "\t", quoting: false });
  const up = await upload(tsv, "name=quotes.tsv", "text/tab-separated-values");
  const d = await settled(up.body.datasetId);
  assert.equal(d.status, "ready", JSON.stringify(d.error));
  assert.equal(d.rowCount, wcL - 1);
  assert.equal(d.rowCount, python.length - 1);
  assert.equal(d.skippedRows, 0);
  assert.deepEqual(d.warnings, []);
  const rows = await allRows(d.id);
  assert.deepEqual(rows.map((r) => [String(r.id), r.title, r.note]), python.slice(1));

  // Quoting asked for: the stray quotes join records, and each long field is a warning.
  const quoted = await settled(
    (await upload(tsv, `name=q&quote=${encodeURIComponent('"')}`, "text/tab-separated-values"))
      .body.datasetId,
  );
  assert.equal(quoted.status, "ready", JSON.stringify(quoted.error));
  assert.ok(quoted.rowCount < wcL - 1);
  assert.ok(quoted.warnings.length > 0);
  const first = quoted.warnings[0];
  assert.match(first.message, new RegExp(`line ${first.line} spans \\d+ lines`));
  assert.equal(first.line, 252, "the line where the field opens");
});

Deno.test({
  name: "datasets: exact top values, distinct counts and quantiles across chunks",
  ...opts,
}, async () => {
  // Dates each occurring 5 times, 67 categories of skewed frequencies, numbers with ties; the
  // file spans several chunks, and no chunk holds all of a value's occurrences.
  const N = 3000;
  const rows = Array.from({ length: N }, (_, i) => {
    const day = new Date(Date.UTC(2024, 0, 1) + Math.floor(i / 5) * 86_400_000);
    const k = (i * 7919) % N;
    return {
      day: day.toISOString().slice(0, 10),
      category: `c${Math.floor(Math.sqrt(k * 1.5)) % 67}`,
      qty: (i * 31) % 97,
      price: i % 11 === 0 ? null : ((i * 7) % 1000) / 4,
    };
  });
  const csv = [
    "day,category,qty,price",
    ...rows.map((r) => `${r.day},${r.category},${r.qty},${r.price ?? ""}`),
  ]
    .join("\n") + "\n";
  const d = await settled((await upload(csv, "name=exact")).body.datasetId);
  assert.equal(d.status, "ready", JSON.stringify(d.error));
  assert.ok(d.progress.chunksTotal >= 4, `${d.progress.chunksTotal} chunks`);
  const col = (name: string) => d.columns.find((c: { name: string }) => c.name === name).profile;

  /** Reference: counts in a Map, top values by count descending then value. */
  const top = (values: (string | number | null)[]) => {
    const counts = new Map<string, number>();
    for (const v of values) if (v !== null) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
    const sorted = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return {
      distinct: counts.size,
      top: sorted.slice(0, 10).map(([value, count]) => ({ value, count, error: 0 })),
    };
  };
  /** Reference: sort, then linear interpolation between closest ranks (pandas' default). */
  const quantile = (values: (number | null)[], q: number) => {
    const sorted = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
    const h = (sorted.length - 1) * q;
    const lo = Math.floor(h);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (h - lo);
  };
  const qs = { p01: 0.01, p05: 0.05, p25: 0.25, p50: 0.5, p75: 0.75, p95: 0.95, p99: 0.99 };

  for (const name of ["day", "category", "qty", "price"] as const) {
    const p = col(name);
    const values = rows.map((r) => r[name]);
    const want = top(values);
    assert.equal(p.distinctExact, true, name);
    assert.equal(p.distinct, want.distinct, name);
    assert.ok(p.distinct <= p.count, name);
    assert.deepEqual(p.topValues, want.top, name);
    if (name === "qty" || name === "price") {
      assert.equal(p.quantilesExact, true, name);
      for (const [key, q] of Object.entries(qs)) {
        const expected = quantile(values as (number | null)[], q);
        assert.ok(
          Math.abs(p.quantiles[key] - expected) <= 1e-9,
          `${name}.${key}: ${p.quantiles[key]} vs ${expected}`,
        );
      }
      const binned = p.histogram.counts.reduce((a: number, b: number) => a + b, 0);
      assert.equal(binned, p.count, `${name}: histogram counts every value`);
    }
  }
  assert.equal(col("day").distinct, N / 5);
  assert.deepEqual(col("day").topValues[0], { value: "2024-01-01", count: 5, error: 0 });
  assert.equal(col("category").distinct, 67);
});

/** A dataset's rows (first page) and its columns' types and null counts, by column name. */
async function loaded(query: string, csv: string) {
  const up = await upload(csv, query);
  assert.equal(up.status, 202, JSON.stringify(up.body));
  const d = await settled(up.body.datasetId);
  assert.equal(d.status, "ready", JSON.stringify(d.error));
  const page = await call(`/api/datasets/${d.id}/rows?limit=100&sort=id:asc`);
  const columns: Record<string, [string, number]> = {};
  for (const c of d.columns) columns[c.name] = [c.type, c.profile.nulls];
  // deno-lint-ignore no-explicit-any
  return { d, columns, rows: page.body.rows as Record<string, any>[] };
}

Deno.test(
  { name: "datasets: a null token is null in a typed column and text in a text column", ...opts },
  async () => {
    const csv = [
      "id,score,word,code",
      "1,12,apple,A",
      "2,NA,null,B",
      "3,7.5,None,NA",
      "4,NA,-,C",
      "5,3,NA,D",
      "6,,pear,",
    ].join("\n") + "\n";
    const byDefault = await loaded(`name=${encodeURIComponent("Ventes été.csv")}`, csv);
    assert.deepEqual(byDefault.columns, {
      id: ["integer", 0],
      score: ["float", 3],
      word: ["string", 0],
      code: ["string", 1],
    });
    assert.deepEqual(byDefault.rows.map((r) => r.score), [12, null, 7.5, null, 3, null]);
    assert.deepEqual(byDefault.rows.map((r) => r.word), [
      "apple",
      "null",
      "None",
      "-",
      "NA",
      "pear",
    ]);
    assert.deepEqual(byDefault.rows.map((r) => r.code), ["A", "B", "NA", "C", "D", null]);
    const exported = await call(`/api/datasets/${byDefault.d.id}/export?format=csv`);
    assert.equal(
      exported.headers.get("content-disposition"),
      `attachment; filename="Ventes _t_.csv"; filename*=UTF-8''Ventes%20%C3%A9t%C3%A9.csv`,
    );
    assert.match(new TextDecoder().decode(exported.bytes), /\r\n2,,null,B\r\n3,7.5,None,NA\r\n/);

    // Switched off: NA is a word like any other, so the score column is text.
    const off = await loaded("name=off&nullTokens=", csv);
    assert.deepEqual(off.columns.score, ["string", 1]);
    assert.deepEqual(off.rows.map((r) => r.score), ["12", "NA", "7.5", "NA", "3", null]);
    assert.deepEqual(off.rows.map((r) => r.word), byDefault.rows.map((r) => r.word));

    // A list of one's own replaces the default one.
    const custom = await loaded(
      `name=custom&nullTokens=${encodeURIComponent("?, n/d")}`,
      "id,score,word\n1,12,apple\n2,?,?\n3,n/d,n/d\n4,NA,pear\n5,4,kiwi\n",
    );
    assert.deepEqual(custom.columns.score, ["string", 0], "NA is no token of this list");
    const customTyped = await loaded(
      "name=custom2&nullTokens=?",
      "id,score,word\n1,12,apple\n2,?,?\n3,4,NA\n",
    );
    assert.deepEqual(customTyped.columns, {
      id: ["integer", 0],
      score: ["integer", 1],
      word: ["string", 0],
    });
    assert.deepEqual(customTyped.rows.map((r) => [r.score, r.word]), [
      [12, "apple"],
      [null, "?"],
      [4, "NA"],
    ]);
  },
);

Deno.test({ name: "datasets: duplicate rows are dropped across chunks", ...opts }, async () => {
  // 3,000 rows where every row appears twice, far apart (different chunks).
  const half = Array.from({ length: 1500 }, (_, i) => `${i},name ${i},${i % 7}`);
  const csv = ["id,name,g", ...half, ...half].join("\n") + "\n";
  const options = encodeURIComponent(JSON.stringify({ cleaning: { dropDuplicateRows: true } }));
  const d = await settled((await upload(csv, `name=dups&options=${options}`)).body.datasetId);
  assert.equal(d.status, "ready", JSON.stringify(d.error));
  assert.ok(d.progress.chunksTotal > 2);
  assert.equal(d.rowCount, 1500);
  assert.equal(d.skippedRows, 1500);
  const id = d.columns.find((c: { name: string }) => c.name === "id");
  assert.equal(id.profile.count, 1500, "the profile counts stored rows only");
});

Deno.test(
  { name: "datasets: a column's type widens when a later chunk needs it", ...opts },
  async () => {
    // Chunk 0 sees integers in n and m, dates in d, nothing in e; later chunks bring floats
    // (n), date-times (d), a word (m) and integers (e). Rows are copied into typed columns,
    // so each of these must widen (or, for e, be converted at the merge) without losing a row.
    const lines = ["i,n,d,m,e"];
    for (let i = 0; i < 3000; i++) {
      const late = i >= 2000;
      lines.push([
        i,
        late ? `${i}.5` : `${i}`,
        late ? `2024-02-03T04:05:0${i % 10}` : "2024-01-02",
        i === 2500 ? "abc" : `${i % 50}`,
        i < 1000 ? "" : `${i}`,
      ].join(","));
    }
    const d = await settled((await upload(lines.join("\n") + "\n", "name=widen")).body.datasetId);
    assert.equal(d.status, "ready", JSON.stringify(d.error));
    assert.ok(d.progress.chunksTotal > 3, `${d.progress.chunksTotal} chunks`);
    assert.equal(d.rowCount, 3000);
    const types = Object.fromEntries(
      d.columns.map((c: { name: string; type: string }) => [c.name, c.type]),
    );
    assert.deepEqual(types, { i: "integer", n: "float", d: "datetime", m: "string", e: "integer" });
    // Values are typed in the table: numeric sort, date-time range, text kept as written.
    const top = await call(`/api/datasets/${d.id}/rows?sort=n:desc&limit=2`);
    assert.deepEqual(top.body.rows.map((r: { n: number }) => r.n), [2999.5, 2998.5]);
    const m = await call(`/api/datasets/${d.id}/rows?filter=${encodeURIComponent("m:eq:abc")}`);
    assert.deepEqual(m.body.rows.map((r: { i: number }) => r.i), [2500]);
    const e = d.columns.find((c: { name: string }) => c.name === "e");
    assert.equal(e.profile.nulls, 1000);
    assert.equal(e.profile.min, 1000);
  },
);

Deno.test(
  { name: "datasets: UTF-8 BOM, UTF-16 BOM and Latin-1 files read right", ...opts },
  async () => {
    const text = "name,city\nRenée,Zürich\nJosé,Köln\n";
    const utf8bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(text)]);
    const utf16 = new Uint8Array(2 + text.length * 2);
    utf16.set([0xff, 0xfe]);
    for (let i = 0; i < text.length; i++) {
      utf16[2 + 2 * i] = text.charCodeAt(i) & 0xff;
      utf16[3 + 2 * i] = text.charCodeAt(i) >> 8;
    }
    const latin1 = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
    for (
      const [what, bytes, query] of [
        ["utf-8 bom", utf8bom, "format=csv"],
        ["utf-16le bom", utf16, "format=csv"],
        ["latin-1", latin1, "format=csv&encoding=latin1"],
      ] as const
    ) {
      const up = await upload(bytes, query);
      assert.equal(up.status, 202, what);
      const d = await settled(up.body.datasetId);
      assert.equal(d.status, "ready", `${what}: ${JSON.stringify(d.error)}`);
      assert.deepEqual(d.columns.map((c: { name: string }) => c.name), ["name", "city"], what);
      const rows = await call(`/api/datasets/${d.id}/rows`);
      assert.deepEqual(rows.body.rows, [
        { name: "Renée", city: "Zürich" },
        { name: "José", city: "Köln" },
      ], what);
    }
  },
);

Deno.test({ name: "datasets: bad uploads are refused and store nothing", ...opts }, async () => {
  const w = await open();
  const count = () => countRows(w.tdb.db, "troupe_datasets");
  const before = await count();
  const empty = await upload("", "name=empty");
  assert.equal(empty.status, 400);
  // Rows past the size limit (one line that long would be refused as a header first).
  const big = await upload("a\n" + "x\n".repeat(1_050_000), "format=csv");
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, "PAYLOAD_TOO_LARGE");
  const noFormat = await upload("a,b\n1,2\n", "", "application/octet-stream");
  assert.equal(noFormat.status, 400);
  const badOption = await upload(
    "a\n1\n",
    "format=csv&options=" + encodeURIComponent('{"cleaning":{"nope":1}}'),
  );
  assert.equal(badOption.status, 400);
  const badDelimiter = await upload("a\n1\n", "format=csv&delimiter=;;");
  assert.equal(badDelimiter.status, 400);
  for (const quote of ["\n", "é", ",", "ab"]) {
    const badQuote = await upload("a\n1\n", `format=csv&quote=${encodeURIComponent(quote)}`);
    assert.equal(badQuote.status, 400, `quote ${JSON.stringify(quote)}`);
    assert.equal(badQuote.body.error.code, "VALIDATION_FAILED");
  }
  assert.equal(await count(), before, "nothing half-accepted");
  assert.equal(await w.leftovers(), 0, "no partial files");
});

Deno.test(
  { name: "datasets: a CSV or TSV header over the limits is a 422 at upload", ...opts },
  async () => {
    const w = await open();
    const count = () => countRows(w.tdb.db, "troupe_datasets");
    const before = await count();
    const refused = (res: Awaited<ReturnType<typeof upload>>, code: string) => {
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
    };
    const wide = await upload(wideCsv(2000), "name=wide");
    refused(wide, "TOO_MANY_COLUMNS");
    assert.equal(wide.body.error.details.maxColumns, 1000);
    refused(
      await upload(wideCsv(2000, { delimiter: "\t" }), "name=wide", "text/tab-separated-values"),
      "TOO_MANY_COLUMNS",
    );
    // A million columns: refused once the header crosses the limit, the rest never read.
    let sent = 0;
    const million = millionColumnCsv().pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      }),
    );
    refused(
      await within(upload(million, "name=million"), 20_000, "the upload was not cut off"),
      "TOO_MANY_COLUMNS",
    );
    assert.ok(sent < 2_000_000, `${sent} bytes of the ~7.9 MB header were read`);
    // In a multipart form, the same.
    const form = new FormData();
    form.append("file", new File([await bytesOf(wideCsv(2000))], "wide.csv", { type: "text/csv" }));
    const req = new Request("http://x/", { method: "POST", body: form });
    refused(
      await call("/api/datasets?name=form", {
        method: "POST",
        body: await req.arrayBuffer(),
        headers: { "content-type": req.headers.get("content-type")! },
      }),
      "TOO_MANY_COLUMNS",
    );
    // A header line longer than the world's 64 KiB, of two columns.
    refused(await upload(`${"y".repeat(100_000)},z\n1,2\n`, "name=long"), "HEADER_TOO_LONG");
    assert.equal(await count(), before, "nothing half-accepted");
    assert.equal(await w.leftovers(), 0, "no partial files");
    // At the limit: accepted.
    const fits = await upload(wideCsv(1000, { rows: 2 }), "name=fits");
    assert.equal(fits.status, 202, JSON.stringify(fits.body));
    assert.equal((await settled(fits.body.datasetId)).status, "ready");
  },
);

Deno.test(
  { name: "datasets: JSON records with too many keys fail the dataset TOO_MANY_COLUMNS", ...opts },
  async () => {
    const up = await upload(wideNdjson(1200), "format=ndjson");
    assert.equal(up.status, 202, "the upload cannot see JSON keys");
    const d = await settled(up.body.datasetId);
    assert.equal(d.status, "failed");
    assert.equal(d.error.code, "TOO_MANY_COLUMNS");
  },
);

Deno.test(
  { name: "datasets: an upload whose client stops sending is a 408 and leaves nothing", ...opts },
  async () => {
    const w = await open();
    const count = () => countRows(w.tdb.db, "troupe_datasets");
    const before = await count();
    // Some rows, then silence with the connection open (the test world waits 1 s).
    const stalled = stalledBody("a,b\n1,2\n3,4\n");
    const res = await within(
      upload(stalled.body, "name=stalled"),
      20_000,
      "no answer: the upload was not cut off",
    );
    assert.equal(res.status, 408, JSON.stringify(res.body));
    assert.equal(res.body.error.code, "UPLOAD_STALLED");
    assert.ok(stalled.cancelled(), "the request body was let go");
    assert.equal(await count(), before, "no dataset");
    assert.equal(await w.leftovers(), 0, "no partial file or parts");
    // The queue is not held back afterwards: the next upload is processed.
    const next = await upload("a,b\n1,2\n", "name=after");
    assert.equal(next.status, 202);
    assert.equal((await settled(next.body.datasetId)).status, "ready");
  },
);

Deno.test(
  {
    name: "datasets: a form field that never ends is a 413 as soon as it passes its limit",
    ...opts,
  },
  async () => {
    const w = await open();
    const before = await w.kept();
    // Sent chunked (no Content-Length), `name` growing forever, the file never reached.
    const form = hugeFieldForm({ field: "name", before: part("format", "csv") });
    const res = await within(
      upload(form.body, "", form.contentType),
      20_000,
      "no answer: the field was read on",
    );
    assert.equal(res.status, 413, JSON.stringify(res.body));
    assert.equal(res.body.error.code, "PAYLOAD_TOO_LARGE");
    assert.deepEqual(res.body.error.details, { field: "name", limitBytes: 64 * 1024 });
    assert.ok(form.pulled() < 64 * 1024 + 4 * 65_536, `read ${form.pulled()} bytes of the body`);
    assert.deepEqual(await w.kept(), before, "no dataset, job or blob");
    assert.equal(await w.leftovers(), 0, "no partial file or parts");
  },
);

Deno.test(
  { name: "datasets: an upload under the minimum rate is a 408 and leaves nothing", ...opts },
  async () => {
    const w = await open();
    const before = await w.kept();
    // 200 bytes every 100 ms: 2 KB/s, under the world's 4 KB/s, never idle for its 1 s.
    const slow = trickleBody(salesCsv(2000), { chunkBytes: 200, intervalMs: 100 });
    const res = await within(upload(slow.body, "name=trickle"), 20_000, "not cut off");
    assert.equal(res.status, 408, JSON.stringify(res.body));
    assert.equal(res.body.error.code, "UPLOAD_TOO_SLOW");
    assert.equal(res.body.error.details.reason, "rate");
    assert.ok(!slow.done(), "cut off before the end");
    assert.ok(slow.cancelled(), "the request body was let go");
    assert.deepEqual(await w.kept(), before, "no dataset, job or blob");
    assert.equal(await w.leftovers(), 0, "no partial file or parts");
  },
);

Deno.test(
  { name: "datasets: a slow upload above the minimum rate completes", ...opts },
  async () => {
    // 1500 bytes every 75 ms: about 20 KB/s, for about 2 s (longer than the rate's window).
    const csv = salesCsv(800);
    const slow = trickleBody(csv, { chunkBytes: 1500, intervalMs: 75 });
    const t0 = performance.now();
    const res = await within(upload(slow.body, "name=slow"), 30_000, "no answer");
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.ok(performance.now() - t0 > 1500, "the upload outlasted the rate's window");
    const d = await settled(res.body.datasetId);
    assert.equal(d.status, "ready");
    assert.equal(d.rowCount, 800);
  },
);

Deno.test(
  { name: "datasets: multipart upload, tenant isolation, bad queries, delete", ...opts },
  async () => {
    const w = await open();
    const form = new FormData();
    form.append(
      "options",
      JSON.stringify({ cleaning: { dropColumns: ["secret"], renameColumns: { v: "value" } } }),
    );
    form.append(
      "file",
      new File(["k,v,secret\na,1,s1\nb,2,s2\na,1,s1\n"], "small.csv", { type: "text/csv" }),
    );
    const req = new Request("http://x/", { method: "POST", body: form });
    const up = await call("/api/datasets?name=form", {
      method: "POST",
      body: await req.arrayBuffer(),
      headers: { "content-type": req.headers.get("content-type")! },
    });
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const d = await settled(up.body.datasetId);
    assert.deepEqual(d.columns.map((c: { name: string }) => c.name), ["k", "value"]);
    assert.equal(d.rowCount, 3);

    assert.equal((await call(`/api/datasets/${d.id}`, { key: w.otherKey })).status, 404);
    assert.equal((await call(`/api/datasets/${d.id}/rows`, { key: w.otherKey })).status, 404);
    assert.equal(
      (await call(`/api/datasets/${d.id}`, { method: "DELETE", key: w.otherKey })).status,
      404,
    );
    const list = await call("/api/datasets", { key: w.otherKey });
    assert.ok(!list.body.items.some((x: { id: string }) => x.id === d.id));

    const badSort = await call(
      `/api/datasets/${d.id}/rows?sort=${encodeURIComponent('k"; DROP TABLE troupe_jobs; --')}`,
    );
    assert.equal(badSort.status, 400);
    assert.match(badSort.body.error.message, /unknown column/);
    const badOp = await call(`/api/datasets/${d.id}/rows?filter=k:like:a`);
    assert.equal(badOp.status, 400);
    assert.equal((await call(`/api/datasets/${d.id}/export?format=xml`)).status, 400);

    const del = await call(`/api/datasets/${d.id}`, { method: "DELETE" });
    assert.equal(del.status, 204);
    assert.equal((await call(`/api/datasets/${d.id}`)).status, 404);
  },
);

/** `text` gzip-compressed. */
async function gzipped(text: string): Promise<Uint8Array<ArrayBuffer>> {
  return await bytesOf(
    new Blob([text]).stream().pipeThrough(
      new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    ),
  );
}

/** `file` as the multipart body of an upload. */
async function formUpload(file: File, query = "") {
  const form = new FormData();
  form.append("file", file);
  const req = new Request("http://x/", { method: "POST", body: form });
  return await call(`/api/datasets?${query}`, {
    method: "POST",
    body: await req.arrayBuffer(),
    headers: { "content-type": req.headers.get("content-type")! },
  });
}

Deno.test(
  {
    name: "datasets: a binary file is a 415 naming what it looked like, and nothing is kept",
    ...opts,
  },
  async () => {
    const w = await open();
    const before = await w.kept();
    const bytes = (...parts: (string | number[])[]) =>
      new Uint8Array(
        parts.flatMap((p) => typeof p === "string" ? [...new TextEncoder().encode(p)] : p),
      );
    const filler = "x".repeat(20_000);
    const files: [string, Uint8Array<ArrayBuffer>][] = [
      ["pdf", bytes("%PDF-1.7\n%\xe2\xe3\n1 0 obj << /Type /Catalog >> endobj\n", filler)],
      // An .xlsx opens as any ZIP does: a local file header.
      ["zip", bytes([0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 8, 0], "[Content_Types].xml", filler)],
      ["png", bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13], "IHDR", filler)],
      ["binary", bytes("a,b\n1,2\n", [0, 0, 0, 1, 0], "\n3,4\n", filler)],
    ];
    for (const [detected, file] of files) {
      for (const how of ["raw", "form"] as const) {
        const res = how === "raw"
          ? await upload(file, "format=csv")
          : await formUpload(new File([file], "data.csv", { type: "text/csv" }));
        const what = `${detected} (${how})`;
        assert.equal(res.status, 415, `${what}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, "UNSUPPORTED_MEDIA_TYPE", what);
        assert.equal(res.body.error.details.detected, detected, what);
        assert.match(res.body.error.message, /CSV, TSV, a JSON array or NDJSON/, what);
      }
    }
    // Gzip around a PDF is a PDF.
    const pdfGz = await gzipped("%PDF-1.4\n" + filler);
    const inner = await upload(pdfGz, "format=csv", "application/gzip");
    assert.equal(inner.status, 415, JSON.stringify(inner.body));
    assert.equal(inner.body.error.details.detected, "pdf");
    assert.deepEqual(await w.kept(), before, "no dataset, job or blob");
    assert.equal(await w.leftovers(), 0, "no partial file or parts");
    // UTF-16 text is full of NUL bytes, and is text.
    const utf16 = new Uint8Array([
      0xff,
      0xfe,
      ...new Uint8Array(
        new Uint16Array(
          [..."a,b\n1,2\n"].map((ch) => ch.charCodeAt(0)),
        ).buffer,
      ),
    ]);
    const ok = await upload(utf16, "format=csv");
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.equal((await settled(ok.body.datasetId)).rowCount, 1);
  },
);

Deno.test(
  { name: "datasets: a gzipped CSV loads with the rows of the plain one", ...opts },
  async () => {
    const csv = salesCsv(600);
    const gz = await gzipped(csv);
    assert.ok(gz.length < csv.length / 3, "compressed");
    const plain = await upload(csv, "name=plain");
    assert.equal(plain.status, 202);
    const expected = await allRows((await settled(plain.body.datasetId)).id);
    assert.equal(expected.length, 600);
    const uploads = {
      "Content-Encoding: gzip": await call("/api/datasets?name=encoded", {
        method: "POST",
        body: gz,
        headers: { "content-type": "text/csv", "content-encoding": "gzip" },
      }),
      "a form's x.csv.gz": await formUpload(
        new File([gz], "x.csv.gz", { type: "application/gzip" }),
      ),
      "gzip bytes, format=csv": await upload(gz, "format=csv", "application/octet-stream"),
    };
    for (const [what, up] of Object.entries(uploads)) {
      assert.equal(up.status, 202, `${what}: ${JSON.stringify(up.body)}`);
      const d = await settled(up.body.datasetId);
      assert.equal(d.status, "ready", `${what}: ${JSON.stringify(d.error)}`);
      assert.equal(d.sizeBytes, new TextEncoder().encode(csv).length, `${what}: stored inflated`);
      assert.deepEqual(await allRows(d.id), expected, what);
    }
    // Content-Encoding: gzip over bytes that are not gzip.
    const notGzip = await call("/api/datasets?format=csv", {
      method: "POST",
      body: csv,
      headers: { "content-type": "text/csv", "content-encoding": "gzip" },
    });
    assert.equal(notGzip.status, 400, JSON.stringify(notGzip.body));
    assert.equal(notGzip.body.error.code, "BAD_GZIP");
    const brotli = await call("/api/datasets?format=csv", {
      method: "POST",
      body: csv,
      headers: { "content-type": "text/csv", "content-encoding": "br" },
    });
    assert.equal(brotli.status, 415, JSON.stringify(brotli.body));
    const form = new FormData();
    form.append("file", new File([csv], "x.csv", { type: "text/csv" }));
    const req = new Request("http://x/", { method: "POST", body: form });
    const gzForm = await call("/api/datasets", {
      method: "POST",
      body: await gzipped(await req.text()),
      headers: { "content-type": req.headers.get("content-type")!, "content-encoding": "gzip" },
    });
    assert.equal(gzForm.status, 415, JSON.stringify(gzForm.body));
  },
);

Deno.test(
  { name: "datasets: a gzip bomb is a 413 after a few KB, and memory stays low", ...opts },
  async () => {
    const w = await open();
    const before = await w.kept();
    const rss0 = Deno.memoryUsage().rss;
    // 1 GiB of one line in about 2 MB of gzip (over 500:1).
    const bomb = gzipBomb();
    const res = await within(
      upload(bomb.body, "format=csv", "application/gzip"),
      20_000,
      "no answer: the bomb was inflated on",
    );
    assert.equal(res.status, 413, JSON.stringify(res.body));
    assert.equal(res.body.error.code, "PAYLOAD_TOO_LARGE");
    assert.equal(res.body.error.details.maxInflateRatio, 200);
    assert.ok(bomb.pulled() < 256 * 1024, `${bomb.pulled()} compressed bytes were read`);
    assert.ok(bomb.cancelled(), "the body was let go");
    const grown = Deno.memoryUsage().rss - rss0;
    assert.ok(grown < 200 * 1024 * 1024, `RSS grew ${grown} bytes`);
    // Under the ratio, the size limit (2 MB here) counts the inflated bytes.
    const big = await gzipped(salesCsv(40_000));
    assert.ok(big.length < 2_000_000 / 2, "the compressed file is well under the limit");
    const tooBig = await upload(big, "format=csv", "application/gzip");
    assert.equal(tooBig.status, 413, JSON.stringify(tooBig.body));
    assert.equal(tooBig.body.error.details.limitBytes, 2_000_000);
    assert.deepEqual(await w.kept(), before, "no dataset, job or blob");
    assert.equal(await w.leftovers(), 0, "no partial file or parts");
  },
);

Deno.test(
  { name: "datasets: a NUL byte in a late chunk fails the dataset BINARY_CONTENT, once", ...opts },
  async () => {
    const w = await open();
    const csv = salesCsv(1500);
    // Past the upload's sniffed head and chunk 0: in a row near the end.
    const at = csv.indexOf("\n1490,") + 1;
    const text = csv.slice(0, at) + "1490,Par\0is" + csv.slice(at + "1490,Paris".length);
    const line = text.slice(0, text.indexOf("\0")).split("\n").length;
    const up = await upload(text, "name=nul");
    assert.equal(up.status, 202, JSON.stringify(up.body));
    const d = await settled(up.body.datasetId);
    assert.equal(d.status, "failed");
    assert.equal(d.error.code, "BINARY_CONTENT", JSON.stringify(d.error));
    assert.equal(d.error.line, line);
    assert.match(d.error.message, new RegExp(`line ${line} holds a NUL byte`));
    const jobs = await waitFor(async () => {
      const rows = await w.tdb.db.query<{ actor: string; attempts: number; status: string }>(
        `SELECT actor, attempts, status FROM troupe_jobs WHERE input->>'datasetId' = $1`,
        [d.id],
      );
      return rows.every((j) => ["succeeded", "failed", "cancelled"].includes(j.status))
        ? rows
        : null;
    }, { timeoutMs: 30_000, what: "the dataset's jobs ended" });
    const failed = jobs.filter((j) => j.status === "failed");
    assert.deepEqual(failed.map((j) => [j.actor, j.attempts]), [["dataset.chunk", 1]]);
    const dead = await w.tdb.db.query(
      `SELECT 1 FROM troupe_dead_letters WHERE input->>'datasetId' = $1`,
      [d.id],
    );
    assert.equal(dead.length, 0, "no dead letter");
  },
);

/**
 * The job once it has ended. The wait is a bound, not a timing: a file of 60,000 rows takes
 * about 20 s on the production drivers on a quiet machine.
 */
async function jobEnd(jobId: string) {
  return await waitFor(async () => {
    const j = (await call(`/api/jobs/${jobId}`)).body;
    return ["succeeded", "failed", "cancelled"].includes(j.status) ? j : null;
  }, { timeoutMs: 90_000, what: `job ${jobId}` });
}

Deno.test(
  { name: "datasets: the upload's job follows the dataset until it is ready", ...opts },
  async () => {
    // The split is held while the event stream opens.
    const w = await open();
    const until = Promise.withResolvers<void>();
    const held = Promise.withResolvers<void>();
    w.hold.current = { until: until.promise, held: held.resolve };
    // After the first few chunks, the rest wait until the test has seen the progress.
    const chunks = Promise.withResolvers<void>();
    w.hold.bytes = { allow: 3, until: chunks.promise };
    const up = await upload(salesCsv(3000), "name=followed");
    assert.equal(up.status, 202);
    await held.promise;
    // The stream's first event is read when it opens, while the pipeline is held.
    const stream = sseReader(
      await w.app.request(`/api/jobs/${up.body.jobId}/events`, {
        headers: { "x-api-key": w.key },
      }),
    );
    w.hold.current = null;
    until.resolve();
    const mid = await waitFor(async () => {
      const j = (await call(`/api/jobs/${up.body.jobId}`)).body;
      return j.pipeline.done >= 1 ? j : null;
    }, { what: "a chunk to be done" });
    assert.equal(mid.status, "running");
    assert.equal(mid.pipeline.unit, "chunks");
    assert.equal((await call(`/api/datasets/${up.body.datasetId}`)).body.status, "processing");
    // The rest of the chunks wait until the stream has told of this state.
    await within(
      stream.next((e) => e.data.status === "running" && (e.data.pipeline?.done ?? 0) >= 1),
      60_000,
      "a running event with a chunk done",
    );
    w.hold.bytes = null;
    chunks.resolve();
    const events = await within(stream.all, 60_000, "events");
    // The stream ended with the pipeline, when the dataset was ready (not when its first step
    // ended): the dataset is ready now.
    const d = (await call(`/api/datasets/${up.body.datasetId}`)).body;
    assert.equal(d.status, "ready");
    assert.ok(d.progress.chunksTotal > 4, `${d.progress.chunksTotal} chunks`);
    assert.equal(events[0]!.event, "job");
    assert.equal(events[0]!.data.kind, "pipeline");
    const last = events.at(-1)!;
    assert.equal(last.event, "done");
    assert.equal(last.data.status, "succeeded");
    assert.deepEqual(last.data.pipeline, {
      done: d.progress.chunksTotal,
      total: d.progress.chunksTotal,
      unit: "chunks",
    });
    assert.deepEqual(last.data.result, {
      datasetId: d.id,
      rows: 3000,
      columns: d.columns.length,
    });
    // While it ran, the pipeline was running and its progress only went up.
    const running = events.filter((e) => e.data.status === "running");
    assert.ok(running.length >= 2, `${running.length} running events`);
    const done = running.map((e) => e.data.pipeline?.done ?? 0);
    assert.deepEqual(done, [...done].sort((a, b) => a - b), JSON.stringify(done));
    assert.ok(done.some((n) => n >= 1), JSON.stringify(done));
    const job = (await call(`/api/jobs/${up.body.jobId}`)).body;
    assert.equal(job.status, "succeeded");
    assert.equal(job.progress, 100);
    assert.equal(job.jobs.running + job.jobs.queued, 0);
    assert.ok(job.jobs.succeeded >= d.progress.chunksTotal + 2, JSON.stringify(job.jobs));
    assert.equal(d.jobId, up.body.jobId);
    const listed = await call(`/api/jobs?pipelineId=${up.body.jobId}&limit=100`);
    assert.ok(listed.body.items.some((j: { actor: string }) => j.actor === "dataset.merge"));
  },
);

Deno.test(
  { name: "datasets: the upload's job fails with the dataset's error", ...opts },
  async () => {
    const bad = await upload("a,b\n1,2\n3\n4,5\n6,7,8\n9,10\n", "errorPolicy=fail");
    const job = await jobEnd(bad.body.jobId);
    const d = (await call(`/api/datasets/${bad.body.datasetId}`)).body;
    assert.equal(d.status, "failed");
    assert.equal(job.status, "failed");
    assert.equal(job.error.code, d.error.code);
    assert.equal(job.jobs.queued + job.jobs.running, 0);

    const head = "id,city\n" +
      Array.from({ length: 60_000 }, (_, i) => `${i},Köln ${i}\n`).join("");
    const bytes = new TextEncoder().encode(head);
    const file = new Uint8Array(bytes.length + 12);
    file.set(bytes);
    file.set(Uint8Array.of(...new TextEncoder().encode("60000,Malm"), 0xf6, 0x0a), bytes.length);
    const utf = await upload(file, "name=bad-utf8-job");
    const failed = await jobEnd(utf.body.jobId);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error.code, "INVALID_ENCODING");
  },
);

Deno.test(
  { name: "datasets: cancelling the upload's job cancels the dataset and its work", ...opts },
  async () => {
    const w = await open();
    // Cancelled while its split step runs (held reading the file).
    const until = Promise.withResolvers<void>();
    const held = Promise.withResolvers<void>();
    w.hold.current = { until: until.promise, held: held.resolve };
    const up = await upload(salesCsv(8000), "name=cancelled");
    await held.promise;
    const cancel = await call(`/api/jobs/${up.body.jobId}/cancel`, { method: "POST" });
    w.hold.current = null;
    until.resolve();
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.equal(cancel.body.status, "cancelled");
    const d = await waitFor(async () => {
      const d = (await call(`/api/datasets/${up.body.datasetId}`)).body;
      return d.status === "cancelled" ? d : null;
    }, { what: "the dataset to be cancelled" });
    assert.equal(d.error.code, "CANCELLED");
    const count = async () =>
      (await w.tdb.db.query<{ n: number; open: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE status IN ('queued', 'running'))::int
           AS open FROM troupe_jobs WHERE pipeline_id = $1`,
        [up.body.jobId],
      ))[0]!;
    await waitFor(async () => (await count()).open === 0, { what: "the pipeline's jobs to stop" });
    const after = await count();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await count(), after, "no job was added to the pipeline after it");
    const job = (await call(`/api/jobs/${up.body.jobId}`)).body;
    assert.equal(job.status, "cancelled");
    // The split was stopped: it sent no chunk.
    assert.deepEqual(job.jobs, {
      queued: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
      cancelled: 1,
      total: 1,
    });
    const chunks = await w.tdb.db.query(
      "SELECT 1 FROM troupe_dataset_chunks WHERE dataset_id = $1",
      [up.body.datasetId],
    );
    assert.equal(chunks.length, 0);
    const again = await call(`/api/jobs/${up.body.jobId}/cancel`, { method: "POST" });
    assert.equal(again.status, 409);
  },
);
