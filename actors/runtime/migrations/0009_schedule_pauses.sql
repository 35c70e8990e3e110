-- Paused schedules: their slots pass without a job (`fireSchedule` makes none) until resumed; the
-- actor's other jobs are not affected.
CREATE TABLE {{schema}}."troupe_schedule_pauses" (
	"actor" text PRIMARY KEY NOT NULL,
	"paused_by" text,
	"paused_at" timestamp with time zone DEFAULT now() NOT NULL
);
