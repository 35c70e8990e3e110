-- Instances: one row per runtime process, written by its heartbeat (a pull worker) or by the
-- deliveries it takes (a push endpoint, throttled); `stopped_at` is set by a clean stop.
CREATE TABLE {{schema}}."troupe_workers" (
	"id" text PRIMARY KEY NOT NULL,
	"host" text,
	"pid" integer,
	"transport" text NOT NULL,
	"mode" text NOT NULL,
	"actors" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"concurrency" integer NOT NULL,
	"in_flight" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"stopped_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "troupe_workers_heartbeat_idx" ON {{schema}}."troupe_workers" USING btree ("heartbeat_at");
--> statement-breakpoint
-- Paused actors: the table queue claims none of their jobs and a pushed delivery of one comes
-- back later; enqueues are still accepted.
CREATE TABLE {{schema}}."troupe_actor_pauses" (
	"actor" text PRIMARY KEY NOT NULL,
	"paused_by" text,
	"paused_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
-- The actor whose job last took a key's lease (keys are not namespaced by actor), to list an
-- actor's keys. Keys leased before this migration have none until they are leased again.
ALTER TABLE {{schema}}."troupe_actor_state" ADD COLUMN "actor" text;
--> statement-breakpoint
CREATE INDEX "troupe_actor_state_actor_idx" ON {{schema}}."troupe_actor_state" USING btree ("actor", "key") WHERE "actor" IS NOT NULL;
--> statement-breakpoint
-- How long the handler of the job's last attempt ran, in milliseconds (null before its end).
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "run_ms" integer;
