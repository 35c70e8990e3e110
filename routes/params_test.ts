/**
 * Query parameters that reach PostgreSQL: values JavaScript accepts and PostgreSQL does not
 * (dates, numbers past a type's range), forged cursors and oversized lists are 400s with
 * details; and a seeded fuzz of every query parameter of the dataset, course and job routes
 * never gets a 500.
 */
import assert from "node:assert/strict";
import { courseActors } from "../actors/courses/pipeline.ts";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { echoActor } from "../actors/system/echo.ts";
import { FsBlobStore } from "../db/blobs/fs.ts";
import type { BlobStore } from "../db/blobs/port.ts";
import { PostgresBlobStore } from "../db/blobs/postgres.ts";
import { API_DRIVERS, type ApiWorld, openApiWorld } from "../tests/api_world.ts";
import { makePdf } from "../tests/fixtures/pdfs.ts";
import { waitFor } from "../tests/harness.ts";
import {
  encodeRowCursor,
  fuzzValue,
  HOSTILE_DATES,
  seeded,
  TAMPERED_CURSORS,
} from "../tests/hostile/input_files.ts";
import { localCourseAdapters, localDatasetAdapters } from "../tests/local_adapters.ts";
import { SHARED_WORLD_TEST, sharedWorld } from "../tests/shared_world.ts";

const opts = SHARED_WORLD_TEST;

interface World extends ApiWorld {
  key: string;
  datasetId: string;
  courseId: string;
}

function openWorld(): Promise<World> {
  return (async () => {
    const dir = await Deno.makeTempDir({ prefix: "troupe-params-" });
    let blobs!: BlobStore;
    const w = await openApiWorld((tdb) => {
      blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
      return [
        echoActor,
        ...datasetActors({ ...localDatasetAdapters(), db: tdb.db, blobs }),
        ...courseActors({ ...localCourseAdapters(tdb.db), db: tdb.db, blobs }),
      ];
    }, (tdb) => ({
      perIpPerMinute: 1_000_000,
      perKeyPerMinute: 1_000_000,
      datasets: { db: tdb.db, blobs, maxBytes: 1_000_000 },
      courses: {
        ...localCourseAdapters(tdb.db),
        db: tdb.db,
        blobs,
        maxFileBytes: 2_000_000,
        maxFiles: 2,
      },
    }));
    const key = (await w.tenants.createKey((await w.tenants.createTenant("acme")).id)).key;
    const send = (path: string, init: RequestInit) =>
      w.app.request(path, { ...init, headers: { ...init.headers, "x-api-key": key } });
    const lines = ["i,f,b,d,t,s"];
    for (let n = 0; n < 40; n++) {
      lines.push(
        [
          n - 20,
          n * 1.5,
          n % 2 === 0,
          `2024-01-${String((n % 28) + 1).padStart(2, "0")}`,
          `2024-02-03T04:05:${String(n % 60).padStart(2, "0")}Z`,
          `text ${n}`,
        ].join(","),
      );
    }
    const up = await (await send("/api/datasets?name=types", {
      method: "POST",
      body: lines.join("\n") + "\n",
      headers: { "content-type": "text/csv" },
    })).json();
    const d = await waitFor(async () => {
      const got = await (await send(`/api/datasets/${up.datasetId}`, {})).json();
      return got.status === "ready" || got.status === "failed" ? got : null;
    }, { timeoutMs: 30_000 });
    assert.equal(d.status, "ready", JSON.stringify(d.error));
    const types = Object.fromEntries(
      d.columns.map((c: { name: string; type: string }) => [c.name, c.type]),
    );
    assert.deepEqual(types, {
      i: "integer",
      f: "float",
      b: "boolean",
      d: "date",
      t: "datetime",
      s: "string",
    });
    const form = new FormData();
    const pdf = await makePdf([{ heading: "One", paragraphs: ["Some words to search for."] }]);
    form.append("files", new File([new Uint8Array(pdf)], "one.pdf", { type: "application/pdf" }));
    const req = new Request("http://x/", { method: "POST", body: form });
    const course = await (await send("/api/courses", {
      method: "POST",
      body: await req.arrayBuffer(),
      headers: { "content-type": req.headers.get("content-type")! },
    })).json();
    assert.ok(course.courseId, JSON.stringify(course));
    const close = w.close;
    return {
      ...w,
      key,
      datasetId: up.datasetId,
      courseId: course.courseId,
      async close() {
        await close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  })();
}

const shared = sharedWorld(openWorld);
const open = shared.open;

async function call(
  path: string,
  init: RequestInit = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  const w = await open();
  const res = await w.app.request(path, {
    ...init,
    headers: { ...init.headers, "x-api-key": w.key },
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* a CSV export, say */ }
  return { status: res.status, body };
}

/** `/api/datasets/<id>/<what>?<params>`. */
async function rows(params: [string, string][], what = "rows") {
  const w = await open();
  return await call(`/api/datasets/${w.datasetId}/${what}?${new URLSearchParams(params)}`);
}

function assert400(res: { status: number; body: { error?: { code: string } } }, what: string) {
  assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body).slice(0, 300)}`);
  assert.equal(res.body.error?.code, "VALIDATION_FAILED", what);
}

Deno.test({
  name: "params: dates JavaScript parses and PostgreSQL refuses are 400s naming the column",
  ...opts,
}, async () => {
  for (const column of ["d", "t"]) {
    for (const date of HOSTILE_DATES) {
      for (const op of ["eq", "gte", "in"]) {
        const res = await rows([["filter", `${column}:${op}:${date}`]]);
        const what = `${column} ${op} ${JSON.stringify(date)}`;
        assert400(res, what);
        // A NUL is refused with the parameter's name before the value is read.
        const details = res.body.error.details;
        if (date.includes("\u0000")) assert.equal(details[0].path, "filter", what);
        else assert.equal(details.column, column, what);
      }
    }
  }
  // What PostgreSQL does take still works, naive date-times read as UTC like the stored ones.
  const day = await rows([["filter", "d:eq:2024-01-05"]]);
  assert.equal(day.status, 200);
  assert.deepEqual(day.body.rows.map((r: { i: number }) => r.i), [-16, 12]);
  const at = await rows([["filter", "t:eq:2024-02-03T04:05:07"]]);
  assert.deepEqual(at.body.rows.map((r: { i: number }) => r.i), [-13]);
  const offset = await rows([["filter", "t:eq:2024-02-03T06:05:07+02:00"]]);
  assert.deepEqual(offset.body.rows.map((r: { i: number }) => r.i), [-13]);
});

Deno.test({
  name: "params: numbers past PostgreSQL's bigint and double precision are 400s",
  ...opts,
}, async () => {
  for (
    const filter of [
      "i:eq:9223372036854775808",
      "i:lt:-9223372036854775809",
      "i:eq:1.5",
      "i:in:1,2,99999999999999999999",
      "f:eq:1e400",
      "f:eq:1e-400",
      "f:eq:0x10",
      "f:gt:1_000",
      "b:eq:yes",
    ]
  ) {
    assert400(await rows([["filter", filter]]), filter);
  }
  assert.equal((await rows([["filter", "i:gte:-9223372036854775808"]])).status, 200);
  assert.equal((await rows([["filter", "f:gt:4e-320"]])).status, 200);
  assert.equal((await rows([["filter", "f:lt:Infinity"]])).status, 200);
});

Deno.test({ name: "params: tampered cursors are 400s, whatever the sort", ...opts }, async () => {
  for (const sort of ["i", "f", "d", "t", "b", null]) {
    for (const { what, cursor } of TAMPERED_CURSORS) {
      const res = await rows([...(sort ? [["sort", sort] as [string, string]] : []), [
        "cursor",
        cursor,
      ]]);
      // A number of 40 digits is a fine double; the rest is wrong for these columns.
      if (sort === "f" && what === "v: a huge integer") assert.equal(res.status, 200);
      else assert400(res, `sort ${sort}: ${what}`);
    }
  }
  // A cursor the API made still pages.
  const first = await rows([["sort", "t:desc"], ["limit", "3"]]);
  const next = await rows([["sort", "t:desc"], ["limit", "3"], ["cursor", first.body.nextCursor]]);
  assert.equal(next.status, 200);
  assert.deepEqual(next.body.rows.map((r: { i: number }) => r.i), [16, 15, 14]);
  const forged = encodeRowCursor({ v: "2024-02-03T04:05:10.000Z", r: 0 });
  assert.equal((await rows([["sort", "t"], ["cursor", forged]])).status, 200);
});

Deno.test({ name: "params: lists over their caps are 400s with the cap", ...opts }, async () => {
  const metrics = await rows([["metrics", Array(3000).fill("sum:i").join(",")]], "aggregate");
  assert400(metrics, "3,000 metrics");
  assert.deepEqual(metrics.body.error.details, { parameter: "metrics", max: 50, count: 3000 });
  assert400(await rows([["groupBy", "i,f,b,d,t,s"]], "aggregate"), "6 groupBy");
  const filters = Array.from({ length: 21 }, () => ["filter", "i:gt:0"] as [string, string]);
  assert400(await rows(filters), "21 filters");
  assert400(await rows(filters, "aggregate"), "21 filters");
  const many = Array.from({ length: 101 }, (_, n) => n).join(",");
  assert400(await rows([["filter", `i:in:${many}`]]), "101 in values");
  assert400(await rows([["filter", `s:eq:${"x".repeat(5000)}`]]), "a 5,000-character value");
  assert400(await rows([["filter", "s:contains:a\u0000b"]]), "a NUL");
  assert400(await rows([["sort", "i"], ["sort", "f"]]), "two sort keys");
  // Within the caps: fine.
  const fifty = await rows([["metrics", Array(50).fill("max:i").join(",")]], "aggregate");
  assert.equal(fifty.status, 200);
});

Deno.test(
  { name: "params: list cursors and text parameters with NUL are 400s", ...opts },
  async () => {
    const w = await open();
    for (
      const path of [
        "/api/datasets?cursor=%00",
        "/api/datasets?cursor=abc",
        "/api/courses?cursor=a%00b",
        `/api/courses/${w.courseId}/search?q=a%00b`,
        "/api/jobs?actor=a%00b",
        "/api/jobs?cursor=%00",
        "/api/dead-letters?actor=%00",
      ]
    ) {
      assert400(await call(path), path);
    }
    // Job input: jsonb holds neither a NUL nor half a surrogate pair.
    for (const message of ["a\u0000b", "\ud800", "x\udc00y"]) {
      const res = await call("/api/actors/system.echo/jobs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ input: { message } }),
      });
      assert400(res, JSON.stringify(message));
      assert.equal(res.body.error.details[0].path, "input.message");
    }
  },
);

Deno.test({
  name: "params: a seeded fuzz of every query parameter never gets a 500",
  ...opts,
}, async () => {
  const w = await open();
  const random = seeded(16);
  const columns = ["i", "f", "b", "d", "t", "s", "nope"];
  const ops = ["eq", "ne", "lt", "lte", "gt", "gte", "contains", "startswith", "in", "isnull"];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const fuzz = () => fuzzValue(random);
  const d = `/api/datasets/${w.datasetId}`;
  const requests: (() => [string, RequestInit?])[] = [
    () => [`${d}/rows?${q([["filter", `${pick(columns)}:${pick(ops)}:${fuzz()}`]])}`],
    () => [
      `${d}/rows?${q([["sort", `${pick(columns)}:${pick(["asc", "desc"])}`], ["cursor", fuzz()]])}`,
    ],
    () => [`${d}/rows?${q([["limit", fuzz()], ["sort", fuzz()]])}`],
    () => [
      `${d}/aggregate?${
        q([["groupBy", fuzz()], ["metrics", `${pick(["sum", "avg", "min"])}:${fuzz()}`]])
      }`,
    ],
    () => [
      `${d}/aggregate?${
        q([["groupBy", pick(columns)], ["filter", `${pick(columns)}:${pick(ops)}:${fuzz()}`]])
      }`,
    ],
    () => [`${d}/export?${q([["format", fuzz()]])}`],
    () => [`/api/datasets?${q([["cursor", fuzz()], ["limit", fuzz()]])}`],
    () => [`/api/courses?${q([["cursor", fuzz()], ["limit", fuzz()]])}`],
    () => [`/api/courses/${w.courseId}/search?${q([["q", fuzz()], ["k", fuzz()]])}`],
    () => [
      `/api/jobs?${
        q([["cursor", fuzz()], ["actor", fuzz()], ["status", fuzz()], ["limit", fuzz()]])
      }`,
    ],
    () => [`/api/dead-letters?${q([["cursor", fuzz()], ["actor", fuzz()]])}`],
    () => [`/api/audit?${q([["cursor", fuzz()], ["limit", fuzz()]])}`],
    () => [`/api/actors/system.echo/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        input: { message: fuzz().slice(0, 10_000), key: fuzz().slice(0, 200) },
      }),
    }],
  ];
  const failures: string[] = [];
  for (let n = 0; n < 400; n++) {
    const [path, init] = pick(requests)();
    const res = await call(path, init);
    if (res.status >= 500) {
      failures.push(`${res.status} ${path.slice(0, 200)} ${init?.body ?? ""}`.slice(0, 400));
    }
  }
  assert.deepEqual(failures, []);
});

function q(params: [string, string][]): string {
  return new URLSearchParams(params).toString();
}
