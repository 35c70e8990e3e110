-- Direct uploads to object storage: the key a presigned PUT writes, what its client said it
-- sends, until when; used_at once a dataset was made of it.
CREATE TABLE "troupe_uploads" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text,
	"key" text NOT NULL,
	"filename" text NOT NULL,
	"content_type" text NOT NULL,
	"size" bigint NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_uploads_expires_idx" ON "troupe_uploads" USING btree ("expires_at");
