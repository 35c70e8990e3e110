CREATE TABLE {{schema}}."troupe_actor_state" (
	"key" text PRIMARY KEY NOT NULL,
	"state" jsonb,
	"version" integer DEFAULT 0 NOT NULL,
	"fence" integer DEFAULT 0 NOT NULL,
	"lease_owner" text,
	"lease_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE {{schema}}."troupe_dead_letters" (
	"id" text PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"actor" text NOT NULL,
	"key" text NOT NULL,
	"tenant_id" text,
	"input" jsonb NOT NULL,
	"error" jsonb NOT NULL,
	"attempts" integer NOT NULL,
	"replayed_at" timestamp with time zone,
	"replay_job_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE {{schema}}."troupe_jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"actor" text NOT NULL,
	"key" text NOT NULL,
	"tenant_id" text,
	"input" jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"run_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_owner" text,
	"lease_fence" integer,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"progress" smallint DEFAULT 0 NOT NULL,
	"progress_message" text,
	"result" jsonb,
	"error" jsonb,
	"parent_id" text,
	"replay_of" text,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE {{schema}}."troupe_outbox" (
	"job_id" text PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE {{schema}}."troupe_processed_messages" (
	"message_id" text PRIMARY KEY NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_dead_letters_created_idx" ON {{schema}}."troupe_dead_letters" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "troupe_dead_letters_actor_idx" ON {{schema}}."troupe_dead_letters" USING btree ("actor","id");--> statement-breakpoint
CREATE INDEX "troupe_jobs_claim_idx" ON {{schema}}."troupe_jobs" USING btree ("priority" DESC NULLS LAST,"run_at","id") WHERE "troupe_jobs"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "troupe_jobs_status_idx" ON {{schema}}."troupe_jobs" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "troupe_jobs_finished_idx" ON {{schema}}."troupe_jobs" USING btree ("finished_at") WHERE "troupe_jobs"."finished_at" is not null;--> statement-breakpoint
CREATE INDEX "troupe_processed_at_idx" ON {{schema}}."troupe_processed_messages" USING btree ("processed_at");