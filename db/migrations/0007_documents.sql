-- Generated documents (a dataset's report, a monthly statement): the file is a blob held by
-- its row; one row per (tenant, kind, key), at the version of the data it was made from.
CREATE TABLE "troupe_documents" (
	"tenant_id" text NOT NULL,
	"kind" text NOT NULL,
	"doc_key" text NOT NULL,
	"version" text NOT NULL,
	"sha256" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"content_type" text NOT NULL,
	"file_name" text NOT NULL,
	"job_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "troupe_documents_pk" PRIMARY KEY ("tenant_id", "kind", "doc_key")
);
