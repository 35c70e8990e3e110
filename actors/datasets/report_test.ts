import assert from "node:assert/strict";
import { assertScriptsDrawn, pdfText, SCRIPT_WORDS } from "../documents/testing.ts";
import { datasetReport, type ReportColumn } from "./report.ts";

function column(name: string, values: string[]): ReportColumn {
  return {
    name,
    type: "string",
    profile: {
      count: values.length,
      nulls: 0,
      distinct: values.length,
      topValues: values.map((value, i) => ({ value, count: 10 - i })),
    },
  };
}

Deno.test(
  "dataset report: names and values in every script, drawn",
  async () => {
    const columns: ReportColumn[] = [
      // Each sample word is a value of its own: one word per bar label.
      ...Object.entries(SCRIPT_WORDS).map(([script, words]) => column(`${script}_列`, words)),
      column("都市", ["東京", "北京", "서울"]),
      column("город", ["Москва", "Київ"]),
      column("مدينة", ["القاهرة", "دبي"]),
      {
        name: "Größe (m²) ≤ θ",
        type: "float",
        profile: {
          count: 5,
          nulls: 1,
          min: -1.5,
          max: 2,
          mean: 0.25,
          distinct: 4,
          histogram: { edges: [-1.5, 0, 2], counts: [2, 2] },
        },
      },
    ];
    const pdf = await datasetReport({
      name: "数据集 — données — البيانات",
      id: "d1",
      format: "csv",
      sizeBytes: 2048,
      rowCount: 5,
      skippedRows: 0,
      createdAt: "2026-01-02T03:04:05.000Z",
      columns,
      generatedAt: new Date("2026-01-02T03:04:05.000Z"),
    });
    const text = await pdfText(pdf);
    for (
      const s of [
        "数据集 — données — البيانات",
        "都市",
        "東京",
        "서울",
        "Москва",
        "القاهرة",
        "مدينة",
        "Größe (m²) ≤ θ",
        ...Object.values(SCRIPT_WORDS).flat(),
      ]
    ) {
      assert.ok(text.includes(s), `pdftotext finds "${s}"`);
    }
    assert.ok(!text.includes("?"), "no character was replaced by ?");
    await assertScriptsDrawn(pdf);
  },
);

Deno.test("dataset report: a long name is cut with an ellipsis", async () => {
  const pdf = await datasetReport({
    name: "名".repeat(200),
    id: "d2",
    format: "csv",
    sizeBytes: 10,
    rowCount: 0,
    skippedRows: 0,
    createdAt: "2026-01-02T03:04:05.000Z",
    columns: [column("x", [])],
  });
  const text = await pdfText(pdf);
  assert.match(text, /名{10,}…/);
  assert.ok(!text.includes("名".repeat(200)));
});
