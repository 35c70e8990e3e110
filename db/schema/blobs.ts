/**
 * Uploaded files in PostgreSQL, for deployments without a disk (the edge): content-addressed
 * blobs stored as 1 MiB parts. Parts are written while the upload streams (under an upload
 * id); the blob row, keyed by the SHA-256 known only at the end, makes them visible.
 *
 * `blobRefs` says who holds a blob (a dataset, a course; any tenant, any store), and
 * `blobCandidates` which blobs may have no holder since when: `system.cleanup` collects those
 * still unheld after a grace period (db/blobs/refs.ts).
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  customType,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from "drizzle-orm/pg-core";

const bytea = customType<{ data: Uint8Array }>({ dataType: () => "bytea" });
const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const blobs = pgTable("troupe_blobs", {
  sha256: text("sha256").primaryKey(),
  uploadId: text("upload_id").notNull(),
  size: bigint("size", { mode: "number" }).notNull(),
  partSize: integer("part_size").notNull(),
  createdAt: tz("created_at").notNull().defaultNow(),
  /** When an upload last stored these bytes: a blob stored within the grace period is kept. */
  touchedAt: tz("touched_at").notNull().defaultNow(),
});

export const blobParts = pgTable(
  "troupe_blob_parts",
  {
    uploadId: text("upload_id").notNull(),
    part: integer("part").notNull(),
    data: bytea("data").notNull(),
    createdAt: tz("created_at").notNull().default(sql`now()`),
  },
  (t) => [
    primaryKey({ columns: [t.uploadId, t.part] }),
    index("troupe_blob_parts_created_idx").on(t.createdAt),
  ],
);

export const blobRefs = pgTable(
  "troupe_blob_refs",
  {
    sha256: text("sha256").notNull(),
    /** What holds the blob: `dataset` or `course`. */
    ownerKind: text("owner_kind").notNull(),
    ownerId: text("owner_id").notNull(),
    tenantId: text("tenant_id"),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.sha256, t.ownerKind, t.ownerId] }),
    index("troupe_blob_refs_owner_idx").on(t.ownerKind, t.ownerId),
  ],
);

export const blobCandidates = pgTable(
  "troupe_blob_candidates",
  {
    sha256: text("sha256").primaryKey(),
    /** When the blob was last stored or released. */
    since: tz("since").notNull().defaultNow(),
  },
  (t) => [index("troupe_blob_candidates_since_idx").on(t.since)],
);

/** Direct uploads to object storage (db/blobs/uploads.ts). */
export const directUploads = pgTable(
  "troupe_uploads",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id"),
    /** The bucket key the presigned `PUT` writes. */
    key: text("key").notNull(),
    filename: text("filename").notNull(),
    contentType: text("content_type").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    expiresAt: tz("expires_at").notNull(),
    /** When a dataset was made of it: an upload makes one. */
    usedAt: tz("used_at"),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  (t) => [index("troupe_uploads_expires_idx").on(t.expiresAt)],
);
