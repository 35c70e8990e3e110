-- Each course holds its sources' blobs (troupe_blob_refs, from the app's storage migrations).
INSERT INTO "troupe_blob_refs" ("sha256", "owner_kind", "owner_id", "tenant_id", "created_at")
SELECT s."sha256", 'course', s."course_id", c."tenant_id", c."created_at"
FROM "troupe_course_sources" s JOIN "troupe_courses" c ON c."id" = s."course_id"
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- Pages a course's own extract messages reported per file: its progress, whatever pages other
-- courses (of any tenant) stored for the same bytes.
ALTER TABLE "troupe_course_sources" ADD COLUMN "pages_done" integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
UPDATE "troupe_course_sources" s SET "pages_done" = LEAST(COALESCE(s."page_count", 0),
  (SELECT count(*) FROM "troupe_pdf_pages" p WHERE p."sha256" = s."sha256"))
WHERE s."status" <> 'pending';
