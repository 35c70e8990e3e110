-- Who holds each blob: a blob is collected only when no row here names it (datasets and course
-- sources of every tenant alike), and only after a grace period (troupe_blob_candidates). The
-- workloads' own migrations record the holders that exist already.
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
INSERT INTO "troupe_blob_candidates" ("sha256") SELECT "sha256" FROM "troupe_blobs"
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- An admin key may see and act on every tenant's shared state (cache statistics, invalidation).
ALTER TABLE "troupe_api_keys" ADD COLUMN "admin" boolean DEFAULT false NOT NULL;
