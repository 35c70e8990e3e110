-- Who holds each blob: a blob is collected only when no row here names it (datasets and course
-- sources of every tenant alike), and only after a grace period (troupe_blob_candidates).
CREATE TABLE "troupe_blob_refs" (
	"sha256" text NOT NULL,
	"owner_kind" text NOT NULL,
	"owner_id" text NOT NULL,
	"tenant_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "troupe_blob_refs_sha256_owner_kind_owner_id_pk" PRIMARY KEY("sha256","owner_kind","owner_id")
);
--> statement-breakpoint
CREATE INDEX "troupe_blob_refs_owner_idx" ON "troupe_blob_refs" USING btree ("owner_kind","owner_id");
--> statement-breakpoint
-- Blobs that may have no holder: stored by an upload (whose reference may never commit) or
-- released by their last holder. `since` is when that last happened.
CREATE TABLE "troupe_blob_candidates" (
	"sha256" text PRIMARY KEY NOT NULL,
	"since" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_blob_candidates_since_idx" ON "troupe_blob_candidates" USING btree ("since");
--> statement-breakpoint
-- When an upload last stored these bytes: a blob stored again within the grace period is kept.
ALTER TABLE "troupe_blobs" ADD COLUMN "touched_at" timestamp with time zone DEFAULT now() NOT NULL;
--> statement-breakpoint
INSERT INTO "troupe_blob_refs" ("sha256", "owner_kind", "owner_id", "tenant_id", "created_at")
SELECT "blob_sha256", 'dataset', "id", "tenant_id", "created_at" FROM "troupe_datasets"
ON CONFLICT DO NOTHING;
--> statement-breakpoint
INSERT INTO "troupe_blob_refs" ("sha256", "owner_kind", "owner_id", "tenant_id", "created_at")
SELECT s."sha256", 'course', s."course_id", c."tenant_id", c."created_at"
FROM "troupe_course_sources" s JOIN "troupe_courses" c ON c."id" = s."course_id"
ON CONFLICT DO NOTHING;
--> statement-breakpoint
INSERT INTO "troupe_blob_candidates" ("sha256") SELECT "sha256" FROM "troupe_blobs"
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- An admin key may see and act on every tenant's shared state (cache statistics, invalidation).
ALTER TABLE "troupe_api_keys" ADD COLUMN "admin" boolean DEFAULT false NOT NULL;
--> statement-breakpoint
-- Pages a course's own extract messages reported per file: its progress, whatever pages other
-- courses (of any tenant) stored for the same bytes.
ALTER TABLE "troupe_course_sources" ADD COLUMN "pages_done" integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
UPDATE "troupe_course_sources" s SET "pages_done" = LEAST(COALESCE(s."page_count", 0),
  (SELECT count(*) FROM "troupe_pdf_pages" p WHERE p."sha256" = s."sha256"))
WHERE s."status" <> 'pending';
