CREATE TABLE "troupe_blob_parts" (
	"upload_id" text NOT NULL,
	"part" integer NOT NULL,
	"data" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "troupe_blob_parts_upload_id_part_pk" PRIMARY KEY("upload_id","part")
);
--> statement-breakpoint
CREATE TABLE "troupe_blobs" (
	"sha256" text PRIMARY KEY NOT NULL,
	"upload_id" text NOT NULL,
	"size" bigint NOT NULL,
	"part_size" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_blob_parts_created_idx" ON "troupe_blob_parts" USING btree ("created_at");