CREATE TABLE "troupe_dataset_chunks" (
	"dataset_id" text NOT NULL,
	"idx" integer NOT NULL,
	"byte_start" bigint NOT NULL,
	"byte_end" bigint NOT NULL,
	"first_line" integer NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"row_count" integer,
	"skipped_rows" integer,
	"profile" jsonb,
	"row_errors" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "troupe_dataset_chunks_dataset_id_idx_pk" PRIMARY KEY("dataset_id","idx")
);
--> statement-breakpoint
CREATE TABLE "troupe_datasets" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"status" text NOT NULL,
	"format" text NOT NULL,
	"options" jsonb NOT NULL,
	"blob_sha256" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"chunk_count" integer,
	"chunks_done" integer DEFAULT 0 NOT NULL,
	"row_count" bigint,
	"skipped_rows" bigint DEFAULT 0 NOT NULL,
	"columns" jsonb,
	"row_errors" jsonb,
	"error" jsonb,
	"job_id" text,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_datasets_tenant_idx" ON "troupe_datasets" USING btree ("tenant_id","id");