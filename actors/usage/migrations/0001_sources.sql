-- Report syncs: the external usage APIs a tenant connects (token sealed, never returned), the
-- cursor each continues from (committed with the page it follows), the schedule's next slot,
-- and the history of syncs with their counters.
CREATE TABLE "troupe_usage_sources" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"base_url" text NOT NULL,
	"token_sealed" text NOT NULL,
	"page_size" integer NOT NULL,
	"concurrency" integer NOT NULL,
	"requests_per_minute" integer NOT NULL,
	"schedule" text NOT NULL,
	"next_run_at" timestamp with time zone,
	"cursor" text,
	"current_sync_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_usage_sources_tenant_idx" ON "troupe_usage_sources" USING btree ("tenant_id", "created_at", "id");
--> statement-breakpoint
CREATE INDEX "troupe_usage_sources_due_idx" ON "troupe_usage_sources" USING btree ("next_run_at") WHERE "next_run_at" IS NOT NULL;
--> statement-breakpoint
CREATE TABLE "troupe_usage_syncs" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"source_id" text NOT NULL,
	"trigger" text NOT NULL,
	"scheduled_for" timestamp with time zone,
	"status" text NOT NULL,
	"start_cursor" text,
	"cursor" text,
	"pages" integer DEFAULT 0 NOT NULL,
	"messages_new" integer DEFAULT 0 NOT NULL,
	"messages_seen" integer DEFAULT 0 NOT NULL,
	"messages_changed" integer DEFAULT 0 NOT NULL,
	"reports_fetched" integer DEFAULT 0 NOT NULL,
	"reports_cached" integer DEFAULT 0 NOT NULL,
	"reports_missing" integer DEFAULT 0 NOT NULL,
	"calls" integer DEFAULT 0 NOT NULL,
	"errors" integer DEFAULT 0 NOT NULL,
	"rate_limited" integer DEFAULT 0 NOT NULL,
	"error" jsonb,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "troupe_usage_syncs_source_idx" ON "troupe_usage_syncs" USING btree ("source_id", "started_at", "id");
