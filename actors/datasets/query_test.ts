/**
 * Dataset row queries on PGlite and real PostgreSQL: filters, sorts with keyset pagination,
 * aggregations, and injection attempts that must end as 400s naming the bad part.
 */
import assert from "node:assert/strict";
import { ValidationError } from "@troupe/runtime";
import { targets } from "../../tests/harness.ts";
import {
  buildAggregateQuery,
  buildRowQuery,
  parseFilter,
  parseMetric,
  parseSort,
  type RowQuery,
} from "./query.ts";
import type { ColumnInfo } from "./store.ts";

const TABLE = "troupe_ds_querytest";

const columns: ColumnInfo[] = [
  { name: "id", key: "c_id", type: "integer" },
  { name: "city name", key: "c_city", type: "string" },
  { name: "score", key: "c_score", type: "float" },
  { name: "active", key: "c_active", type: "boolean" },
  { name: "day", key: "c_day", type: "date" },
];

const cities = ["Paris", "Lyon", 'O\'Brien "Town"', "100% Ville", null];

function rowOf(i: number) {
  return {
    id: i,
    city: cities[i % cities.length]!,
    score: i % 7 === 0 ? null : (i * 37) % 101 / 4,
    active: i % 3 === 0,
    day: `2024-01-${String((i % 28) + 1).padStart(2, "0")}`,
  };
}

const N = 230;

for (const target of targets) {
  Deno.test({ name: `dataset queries [${target.name}]` }, async (t) => {
    const { db, cleanup } = await target.open();
    try {
      await db.query(`CREATE TABLE ${TABLE} (_row bigint PRIMARY KEY, c_id bigint, c_city text,
        c_score double precision, c_active boolean, c_day date)`);
      const rows = Array.from({ length: N }, (_, i) => rowOf(i));
      await db.query(
        `INSERT INTO ${TABLE} SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[],
           $4::float8[], $5::boolean[], $6::date[])`,
        [
          rows.map((_, i) => i),
          rows.map((r) => r.id),
          rows.map((r) => r.city),
          rows.map((r) => r.score),
          rows.map((r) => r.active),
          rows.map((r) => r.day),
        ],
      );
      const run = async (q: RowQuery) => {
        const built = buildRowQuery(TABLE, columns, q);
        return built.page(await db.query(built.text, built.params));
      };
      const all = async (q: Omit<RowQuery, "cursor" | "limit">, limit = 17) => {
        const out: Record<string, unknown>[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 100; pages++) {
          const page = await run({ ...q, limit, ...(cursor ? { cursor } : {}) });
          out.push(...page.rows);
          if (!page.nextCursor) return out;
          cursor = page.nextCursor;
        }
        throw new Error("pagination did not end");
      };

      await t.step("pages of a sort hold every row once, in order (nulls last)", async () => {
        for (const direction of ["asc", "desc"] as const) {
          const got = await all({ filters: [], sort: { column: "score", direction } });
          assert.equal(got.length, N);
          assert.equal(new Set(got.map((r) => r.id)).size, N);
          const expected = [...rows].sort((a, b) => {
            if (a.score === null) return b.score === null ? a.id - b.id : 1;
            if (b.score === null) return -1;
            return (direction === "asc" ? a.score - b.score : b.score - a.score) || a.id - b.id;
          });
          assert.deepEqual(got.map((r) => r.id), expected.map((r) => r.id));
        }
        const byCity = await all(
          { filters: [], sort: { column: "city name", direction: "asc" } },
          9,
        );
        assert.equal(byCity.length, N);
        const unsorted = await all({ filters: [] }, 50);
        assert.deepEqual(unsorted.map((r) => r.id), rows.map((r) => r.id));
      });

      await t.step("filters by type, with quotes and wildcards taken literally", async () => {
        const f = (...specs: string[]) => all({ filters: specs.map(parseFilter) }, 1000);
        assert.equal((await f("id:lt:10")).length, 10);
        assert.equal((await f("active:eq:true")).length, rows.filter((r) => r.active).length);
        assert.equal(
          (await f('city name:eq:O\'Brien "Town"')).length,
          rows.filter((r) => r.city === `O'Brien "Town"`).length,
        );
        assert.equal(
          (await f("city name:contains:100%")).length,
          rows.filter((r) => r.city === "100% Ville").length,
        );
        assert.equal(
          (await f("city name:contains:%")).length,
          rows.filter((r) => r.city?.includes("%")).length,
        );
        assert.equal((await f("score:isnull")).length, rows.filter((r) => r.score === null).length);
        assert.equal(
          (await f("day:gte:2024-01-28")).length,
          rows.filter((r) => r.day >= "2024-01-28").length,
        );
        assert.equal((await f("id:in:1,2,3,999")).length, 3);
        const both = await f("active:eq:false", "score:gt:10");
        assert.ok(both.every((r) => r.active === false && (r.score as number) > 10));
        assert.equal(typeof both[0]!.score, "number");
      });

      await t.step("aggregations", async () => {
        const built = buildAggregateQuery(TABLE, columns, {
          groupBy: ["active"],
          metrics: ["count", "sum:id", "avg:score", "max:day"].map(parseMetric),
          filters: [],
          limit: 10,
        });
        const page = built.page(await db.query(built.text, built.params));
        const trues = page.rows.find((r) => r.active === true)!;
        const expected = rows.filter((r) => r.active);
        assert.equal(trues.count, expected.length);
        assert.equal(trues["sum:id"], expected.reduce((a, r) => a + r.id, 0));
        const scores = expected.map((r) => r.score).filter((s): s is number => s !== null);
        assert.ok(
          Math.abs(
            (trues["avg:score"] as number) - scores.reduce((a, b) => a + b, 0) / scores.length,
          ) < 1e-9,
        );
        assert.equal(trues["max:day"], "2024-01-28");
      });

      await t.step("injection attempts are validation errors naming the bad part", async () => {
        const cases: [string, () => unknown][] = [
          [
            "sort column",
            () =>
              buildRowQuery(TABLE, columns, {
                filters: [],
                sort: parseSort('id"; DROP TABLE x; --'),
                limit: 5,
              }),
          ],
          [
            "filter column",
            () => buildRowQuery(TABLE, columns, { filters: [parseFilter("c_id:eq:1")], limit: 5 }),
          ],
          ["operator", () => parseFilter("id:;DELETE:1")],
          [
            "integer value",
            () =>
              buildRowQuery(TABLE, columns, { filters: [parseFilter("id:eq:1 OR 1=1")], limit: 5 }),
          ],
          [
            "cursor",
            () => buildRowQuery(TABLE, columns, { filters: [], limit: 5, cursor: "'; DROP" }),
          ],
          ["metric", () => parseMetric("median:id")],
          [
            "sum of text",
            () =>
              buildAggregateQuery(TABLE, columns, {
                groupBy: [],
                metrics: [parseMetric("sum:city name")],
                filters: [],
                limit: 5,
              }),
          ],
          [
            "group column",
            () =>
              buildAggregateQuery(TABLE, columns, {
                groupBy: ["nope"],
                metrics: [],
                filters: [],
                limit: 5,
              }),
          ],
        ];
        for (const [what, fn] of cases) {
          assert.throws(fn, ValidationError, what);
        }
        assert.throws(
          () =>
            buildRowQuery(TABLE, columns, { filters: [], sort: parseSort("bogus:desc"), limit: 5 }),
          /unknown column "bogus" in sort/,
        );
        const still = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${TABLE}`);
        assert.equal(still[0]!.n, N);
      });
    } finally {
      await cleanup();
    }
  });
}
