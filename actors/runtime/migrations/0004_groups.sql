-- Groups (fan-out / fan-in): parts sent together and a continuation sent once, when every part
-- has succeeded or as soon as one has failed for good. `remaining` is decremented in the
-- transaction that ends a part; the row is locked first, and `status` leaves 'open' once.
CREATE TABLE {{schema}}."troupe_groups" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text,
	"parent_id" text,
	"parts" jsonb NOT NULL,
	"remaining" integer NOT NULL,
	"status" text DEFAULT 'open' NOT NULL,
	"continuation" jsonb NOT NULL,
	"continuation_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "group_id" text;
--> statement-breakpoint
CREATE INDEX "troupe_groups_finished_idx" ON {{schema}}."troupe_groups" USING btree ("finished_at") WHERE "finished_at" IS NOT NULL;
