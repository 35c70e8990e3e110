/**
 * A monthly statement over a tenant's month of usage on PostgreSQL: how long the version
 * check (what `POST /api/usage/statements` reads), the data read, the PDF and the XLSX take.
 *
 *   deno run -A bench/statement.ts [--messages 100000] [--reports 500]
 */
import { parseArgs } from "node:util";
import { postgresTarget } from "../tests/harness.ts";
import { recordUsage, type UsageMessage } from "../actors/usage/store.ts";
import { loadStatementData, statementVersion } from "../actors/usage/statement_data.ts";
import { buildStatementPdf } from "../actors/usage/statement_pdf.ts";
import { buildStatementXlsx } from "../actors/usage/statement_xlsx.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "100000" },
    reports: { type: "string", default: "500" },
  },
});
const total = Number(values.messages);
const reports = Number(values.reports);
const { db, cleanup } = await postgresTarget.open();
try {
  await db.query(
    "INSERT INTO troupe_tenants (id, name, time_zone) VALUES ('t1', 'Bench', 'Europe/Paris')",
  );
  const names = new Map(Array.from({ length: reports }, (_, r) => [`r${r}`, `Report ${r}`]));
  const start = Date.parse("2026-05-01T00:00:00Z");
  const span = 31 * 86_400_000;
  const t0 = performance.now();
  for (let at = 0; at < total; at += 1000) {
    const page: UsageMessage[] = [];
    for (let i = at; i < Math.min(total, at + 1000); i++) {
      page.push({
        id: String(i),
        timestamp: new Date(start + Math.floor((i / total) * span)),
        creditsCents: BigInt((i * 37) % 500),
        reportId: i % 10 === 0 ? null : `r${i % reports}`,
      });
    }
    await db.transaction((tx) =>
      recordUsage(tx, {
        tenantId: "t1",
        sourceId: "s1",
        timeZone: "Europe/Paris",
        messages: page,
        reportNames: names,
      })
    );
  }
  console.log(`recorded ${total} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await db.query("ANALYZE troupe_usage_snapshots");
  const time = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const runs: number[] = [];
    let out!: T;
    for (let i = 0; i < 5; i++) {
      const s = performance.now();
      out = await fn();
      runs.push(performance.now() - s);
    }
    runs.sort((a, b) => a - b);
    console.log(`${what}: median ${runs[2]!.toFixed(1)} ms (min ${runs[0]!.toFixed(1)})`);
    return out;
  };
  await time("version (POST)", () => statementVersion(db, "t1", "2026-05"));
  const data = await time("data", () => loadStatementData(db, "t1", "2026-05"));
  const pdf = await time("pdf", () => buildStatementPdf(data));
  const xlsx = await time("xlsx", () => buildStatementXlsx(data));
  console.log(
    `${data.total.messages} messages, ${data.reports.length} reports; pdf ${pdf.length} B, xlsx ${xlsx.length} B`,
  );
} finally {
  await cleanup();
}
