/**
 * Uploaded files in PostgreSQL, for deployments without a disk (the edge): content-addressed
 * blobs stored as 1 MiB parts. Parts are written while the upload streams (under an upload
 * id); the blob row, keyed by the SHA-256 known only at the end, makes them visible.
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
