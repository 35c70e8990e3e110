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
import { API_DRIVERS, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { countRows, stalledBody, waitFor, within } from "../tests/harness.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

interface World extends ApiWorld {
  key: string;
  otherKey: string;
  blobs: BlobStore;
  /** What failed uploads may have left behind: temporary files or orphan parts. */
  leftovers(): Promise<number>;
}

let world: Promise<World> | undefined;
function open(): Promise<World> {
  world ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-datasets-" });
    let blobs!: BlobStore;
    const w = await openApiWorld((tdb) => {
      blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
      // Small chunks, split steps and merge pages, so files here take several of each.
      return datasetActors({
        db: tdb.db,
        blobs,
        chunkBytes: 16 * 1024,
        splitStepChunks: 2,
        mergePage: 2,
      });
    }, (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      datasets: { db: tdb.db, blobs, maxBytes: 2_000_000, uploadIdleMs: 1000 },
    }));
    const key = (await w.tenants.createKey((await w.tenants.createTenant("acme")).id)).key;
    const otherKey = (await w.tenants.createKey((await w.tenants.createTenant("other")).id)).key;
    const close = w.close;
    return {
      ...w,
      key,
      otherKey,
      blobs,
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
      async close() {
        await close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
  return world;
}

async function call(
  path: string,
  init: RequestInit & { key?: string } = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; headers: Headers; body: any; bytes: Uint8Array }> {
  const w = await open();
  const headers = new Headers(init.headers);
  headers.set("x-api-key", init.key ?? w.key);
  const res = await w.app.request(path, { ...init, headers });
  const bytes = new Uint8Array(await res.arrayBuffer());
  let body: unknown = null;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body, bytes };
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

async function settled(id: string) {
  return await waitFor(async () => {
    const d = await call(`/api/datasets/${id}`);
    return d.body.status === "ready" || d.body.status === "failed" ? d.body : null;
  }, { timeoutMs: 30_000, what: `dataset ${id}` });
}

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
    const text = new TextDecoder().decode(exported.bytes);
    assert.ok(text.startsWith("id,city,amount,active,day,note,note_2\r\n"));
    assert.match(text, /"multi\nline, with comma"/);
    const ndjson = await call(`/api/datasets/${d.id}/export?format=ndjson`);
    const lines = new TextDecoder().decode(ndjson.bytes).trim().split("\n");
    assert.equal(lines.length, N);
    assert.equal(JSON.parse(lines[0]!).id, 1);

    const pdf = await call(`/api/datasets/${d.id}/report.pdf`);
    assert.equal(pdf.status, 200);
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
  assert.equal(skip.rowCount, 3);
  assert.equal(skip.skippedRows, 2);
  assert.deepEqual(skip.rowErrors.map((e: { line: number }) => e.line), [3, 5]);
  const fail = await settled((await upload(csv, "errorPolicy=fail")).body.datasetId);
  assert.equal(fail.status, "failed");
  assert.equal(fail.error.line, 3);
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
  const big = await upload("x".repeat(2_100_000), "format=csv");
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
  assert.equal(await count(), before, "nothing half-accepted");
  assert.equal(await w.leftovers(), 0, "no partial files");
});

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
    assert.equal((await call(`/api/datasets/${d.id}/export?format=xlsx`)).status, 400);

    const del = await call(`/api/datasets/${d.id}`, { method: "DELETE" });
    assert.equal(del.status, 204);
    assert.equal((await call(`/api/datasets/${d.id}`)).status, 404);
  },
);

Deno.test({ name: "datasets: close", ...opts }, async () => {
  await (await open()).close();
});
