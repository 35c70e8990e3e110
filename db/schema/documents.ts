/**
 * Generated documents (actors/documents/stored.ts): a dataset's report, a monthly statement.
 * The file is a blob (`blobs.ts`) held by its row; one row per (tenant, kind, key), at the
 * version of the data it was made from.
 */
import { bigint, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const documents = pgTable(
  "troupe_documents",
  {
    tenantId: text("tenant_id").notNull(),
    /** `dataset_report` or `statement`. */
    kind: text("kind").notNull(),
    /** The document within its kind: a dataset's id, a statement's `month:format`. */
    docKey: text("doc_key").notNull(),
    /** The version of the data it was made from (compared for equality only). */
    version: text("version").notNull(),
    sha256: text("sha256").notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
    contentType: text("content_type").notNull(),
    fileName: text("file_name").notNull(),
    jobId: text("job_id"),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "troupe_documents_pk", columns: [t.tenantId, t.kind, t.docKey] })],
);
