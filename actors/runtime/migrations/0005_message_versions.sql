-- Message versions: the version of its actor's input shape each message was made with, so a
-- message queued before a deploy that changed the shape is upgraded when it runs.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "input_version" integer DEFAULT 1 NOT NULL;
--> statement-breakpoint
ALTER TABLE {{schema}}."troupe_dead_letters" ADD COLUMN "input_version" integer DEFAULT 1 NOT NULL;
