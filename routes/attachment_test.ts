import assert from "node:assert/strict";
import { attachmentHeader, exportFileName } from "./attachment.ts";

Deno.test("exportFileName() replaces the extension the upload came with, never doubles it", () => {
  assert.equal(exportFileName("sales.csv", "csv"), "sales.csv");
  assert.equal(exportFileName("sales", "csv"), "sales.csv");
  assert.equal(exportFileName("sales.CSV", "ndjson"), "sales.ndjson");
  assert.equal(exportFileName("sales.ndjson", "ndjson"), "sales.ndjson");
  assert.equal(exportFileName("sales.tsv", "csv"), "sales.csv");
  assert.equal(exportFileName("sales.csv.gz", "csv"), "sales.csv");
  assert.equal(exportFileName("report.2024", "csv"), "report.2024.csv");
});

Deno.test("exportFileName() never yields a path or an empty name", () => {
  assert.equal(exportFileName("../../etc/passwd", "csv"), "_.._etc_passwd.csv");
  assert.equal(exportFileName("a\r\nb", "csv"), "a__b.csv");
  assert.equal(exportFileName("", "csv"), "dataset.csv");
  assert.equal(exportFileName(".csv", "csv"), "dataset.csv");
});

Deno.test("attachmentHeader() quotes a plain name and encodes any other in filename*", () => {
  assert.equal(attachmentHeader("sales.csv", "csv"), `attachment; filename="sales.csv"`);
  assert.equal(
    attachmentHeader('Köln "Q1".csv', "csv"),
    `attachment; filename="K_ln _Q1_.csv"; filename*=UTF-8''K%C3%B6ln%20%22Q1%22.csv`,
  );
  assert.equal(
    attachmentHeader("a\\b;c", "ndjson"),
    `attachment; filename="a_b;c.ndjson"`,
  );
});
