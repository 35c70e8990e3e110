CREATE TABLE "troupe_course_chunks" (
	"id" text PRIMARY KEY NOT NULL,
	"course_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"source_idx" integer NOT NULL,
	"file_name" text NOT NULL,
	"page_from" integer NOT NULL,
	"page_to" integer NOT NULL,
	"section" text NOT NULL,
	"text" text NOT NULL,
	"tsv" "tsvector" GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED
);
--> statement-breakpoint
CREATE TABLE "troupe_course_sources" (
	"course_id" text NOT NULL,
	"idx" integer NOT NULL,
	"file_name" text NOT NULL,
	"sha256" text NOT NULL,
	"size_bytes" integer NOT NULL,
	"page_count" integer,
	"status" text DEFAULT 'pending' NOT NULL,
	"outline" jsonb,
	"error" jsonb,
	CONSTRAINT "troupe_course_sources_course_id_idx_pk" PRIMARY KEY("course_id","idx")
);
--> statement-breakpoint
CREATE TABLE "troupe_courses" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"title" text NOT NULL,
	"status" text NOT NULL,
	"structure" jsonb,
	"error" jsonb,
	"job_id" text,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "troupe_pdf_pages" (
	"sha256" text NOT NULL,
	"page" integer NOT NULL,
	"lines" jsonb NOT NULL,
	CONSTRAINT "troupe_pdf_pages_sha256_page_pk" PRIMARY KEY("sha256","page")
);
--> statement-breakpoint
CREATE INDEX "troupe_course_chunks_course_idx" ON "troupe_course_chunks" USING btree ("course_id");--> statement-breakpoint
CREATE INDEX "troupe_course_chunks_tsv_idx" ON "troupe_course_chunks" USING gin ("tsv");--> statement-breakpoint
CREATE INDEX "troupe_courses_tenant_idx" ON "troupe_courses" USING btree ("tenant_id","id");