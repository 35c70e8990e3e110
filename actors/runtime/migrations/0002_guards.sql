-- Lease losses: how often a job was running when the process holding its lease stopped
-- (crashed, or stalled past its lease). A job that reaches the limit is a poison job and is
-- dead-lettered instead of being run again.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "lease_losses" integer DEFAULT 0 NOT NULL;
--> statement-breakpoint
-- For a job that lost a lease already (a suspect): the lease fence under which its handler last
-- began, written before it begins. A later stop counts against it only if it had begun.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "started_fence" integer;
--> statement-breakpoint
-- The hash of the first request made with an idempotency key (actor + canonical input): a
-- repeat with another body is refused instead of silently answered with the first job.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "request_hash" text;
