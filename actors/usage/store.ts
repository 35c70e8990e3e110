/**
 * The write side of usage: a page of external messages becomes snapshots, once each, and the
 * daily and per-report aggregates move by exactly the difference it makes.
 *
 * Invariants, all inside the caller's transaction (the sync commits the page's cursor in it):
 * - A snapshot is unique per (tenant, source, message id). A message seen again with the same
 *   content changes nothing; with other content (instant, credits or report) its snapshot is
 *   rewritten and the aggregates lose its old figures and gain the new ones.
 * - Aggregates are sums of integer cents and counts, so any order of pages, redeliveries and
 *   changes ends at the figures a full recount would give.
 * - `seq` (one sequence for every tenant) grows on every insert or change: the live stream
 *   resumes from it. A tenant's pages take their seqs one transaction at a time (a lock per
 *   tenant held to the commit), so a reader that sees a seq sees every lower seq of the tenant:
 *   a stream past seq N never misses one committed later.
 */
import type { SqlExecutor } from "@troupe/runtime";
import { localDay } from "./days.ts";

/** One external message, parsed. */
export interface UsageMessage {
  id: string;
  timestamp: Date;
  creditsCents: bigint;
  reportId: string | null;
}

export interface RecordUsage {
  tenantId: string;
  sourceId: string;
  /** The tenant's IANA time zone; days are counted in it. */
  timeZone: string;
  messages: readonly UsageMessage[];
  /** Report names by report id; a missing id or `null` keeps the snapshot without a name. */
  reportNames: ReadonlyMap<string, string | null>;
}

export interface RecordedUsage {
  inserted: number;
  unchanged: number;
  changed: number;
  /** The highest `seq` written, or null when nothing was written. */
  lastSeq: bigint | null;
}

interface Row {
  message_id: string;
  ts: Date | string;
  day: string;
  credits_cents: string | number | bigint;
  report_id: string | null;
  report_name: string | null;
}

interface Figures {
  day: string;
  credits: bigint;
  reportKey: string;
  reportName: string | null;
}

/** Upserts the snapshots of one page and adjusts the aggregates in `tx`. */
export async function recordUsage(tx: SqlExecutor, p: RecordUsage): Promise<RecordedUsage> {
  // A page may repeat a message: the last copy wins, as it would on a later page.
  const byId = new Map<string, UsageMessage>();
  for (const m of p.messages) byId.set(m.id, m);
  const ids = [...byId.keys()];
  if (ids.length === 0) return { inserted: 0, unchanged: 0, changed: 0, lastSeq: null };

  await tx.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
    `troupe_usage:${p.tenantId}`,
  ]);
  const old = new Map<string, Row>();
  for (
    const r of await tx.query<Row>(
      `SELECT message_id, ts, day::text AS day, credits_cents, report_id, report_name
         FROM troupe_usage_snapshots
        WHERE tenant_id = $1 AND source_id = $2 AND message_id = ANY($3::text[])
        FOR UPDATE`,
      [p.tenantId, p.sourceId, ids],
    )
  ) old.set(r.message_id, r);

  const daily = new Map<string, { credits: bigint; messages: bigint }>();
  const reports = new Map<string, { name: string | null; credits: bigint; messages: bigint }>();
  const add = (f: Figures, sign: bigint) => {
    const d = daily.get(f.day) ?? { credits: 0n, messages: 0n };
    d.credits += sign * f.credits;
    d.messages += sign;
    daily.set(f.day, d);
    const r = reports.get(f.reportKey) ?? { name: null, credits: 0n, messages: 0n };
    r.credits += sign * f.credits;
    r.messages += sign;
    if (sign > 0n && f.reportName !== null) r.name = f.reportName;
    reports.set(f.reportKey, r);
  };

  const write: { m: UsageMessage; day: string; name: string | null }[] = [];
  let unchanged = 0;
  let changed = 0;
  for (const m of byId.values()) {
    const day = localDay(m.timestamp, p.timeZone);
    const name = m.reportId === null ? null : p.reportNames.get(m.reportId) ?? null;
    const before = old.get(m.id);
    if (before) {
      const same = new Date(before.ts).getTime() === m.timestamp.getTime() &&
        BigInt(before.credits_cents) === m.creditsCents && before.report_id === m.reportId;
      if (same) {
        unchanged++;
        continue;
      }
      changed++;
      add({
        day: before.day,
        credits: BigInt(before.credits_cents),
        reportKey: before.report_id ?? "",
        reportName: before.report_name,
      }, -1n);
    }
    add({ day, credits: m.creditsCents, reportKey: m.reportId ?? "", reportName: name }, 1n);
    write.push({ m, day, name });
  }
  if (write.length === 0) return { inserted: 0, unchanged, changed: 0, lastSeq: null };

  const written = await tx.query<{ seq: string }>(
    `INSERT INTO troupe_usage_snapshots AS s
       (tenant_id, source_id, message_id, ts, day, credits_cents, report_id, report_name, seq)
     SELECT $1, $2, i.message_id, i.ts, i.day, i.credits_cents, i.report_id, i.report_name,
            nextval('troupe_usage_seq')
       FROM unnest($3::text[], $4::timestamptz[], $5::date[], $6::bigint[], $7::text[], $8::text[])
         AS i(message_id, ts, day, credits_cents, report_id, report_name)
     ON CONFLICT (tenant_id, source_id, message_id) DO UPDATE
        SET ts = excluded.ts, day = excluded.day, credits_cents = excluded.credits_cents,
            report_id = excluded.report_id, report_name = excluded.report_name,
            seq = excluded.seq, updated_at = now()
     RETURNING seq`,
    [
      p.tenantId,
      p.sourceId,
      write.map((w) => w.m.id),
      write.map((w) => w.m.timestamp.toISOString()),
      write.map((w) => w.day),
      write.map((w) => w.m.creditsCents.toString()),
      write.map((w) => w.m.reportId),
      write.map((w) => w.name),
    ],
  );

  const days = [...daily].filter(([, d]) => d.messages !== 0n || d.credits !== 0n);
  if (days.length > 0) {
    await tx.query(
      `INSERT INTO troupe_usage_daily AS d (tenant_id, source_id, day, credits_cents, messages)
       SELECT $1, $2, i.day, i.credits_cents, i.messages
         FROM unnest($3::date[], $4::bigint[], $5::bigint[]) AS i(day, credits_cents, messages)
       ON CONFLICT (tenant_id, day, source_id) DO UPDATE
          SET credits_cents = d.credits_cents + excluded.credits_cents,
              messages = d.messages + excluded.messages`,
      [
        p.tenantId,
        p.sourceId,
        days.map(([day]) => day),
        days.map(([, d]) => d.credits.toString()),
        days.map(([, d]) => d.messages.toString()),
      ],
    );
  }
  const totals = [...reports].filter(([, r]) => r.messages !== 0n || r.credits !== 0n);
  if (totals.length > 0) {
    await tx.query(
      `INSERT INTO troupe_usage_report_totals AS t
         (tenant_id, source_id, report_key, report_name, credits_cents, messages)
       SELECT $1, $2, i.report_key, i.report_name, i.credits_cents, i.messages
         FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[])
           AS i(report_key, report_name, credits_cents, messages)
       ON CONFLICT (tenant_id, source_id, report_key) DO UPDATE
          SET credits_cents = t.credits_cents + excluded.credits_cents,
              messages = t.messages + excluded.messages,
              report_name = coalesce(excluded.report_name, t.report_name)`,
      [
        p.tenantId,
        p.sourceId,
        totals.map(([key]) => key),
        totals.map(([, r]) => r.name),
        totals.map(([, r]) => r.credits.toString()),
        totals.map(([, r]) => r.messages.toString()),
      ],
    );
  }
  let lastSeq: bigint | null = null;
  for (const { seq } of written) {
    const s = BigInt(seq);
    if (lastSeq === null || s > lastSeq) lastSeq = s;
  }
  return { inserted: write.length - changed, unchanged, changed, lastSeq };
}
