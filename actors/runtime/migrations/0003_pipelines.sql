-- Pipelines: a parent job (kind 'pipeline') that no handler runs; its status, progress and
-- error follow the jobs sent within it. Every job of a pipeline carries the pipeline's id.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "kind" text DEFAULT 'job' NOT NULL;
--> statement-breakpoint
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "pipeline_id" text;
--> statement-breakpoint
-- On a pipeline row: the workload's progress ({done, total, unit}) and abort hook.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "pipeline" jsonb;
--> statement-breakpoint
CREATE INDEX "troupe_jobs_pipeline_open_idx" ON {{schema}}."troupe_jobs" USING btree ("pipeline_id") WHERE "pipeline_id" IS NOT NULL AND "status" IN ('queued', 'running');
--> statement-breakpoint
CREATE INDEX "troupe_jobs_pipeline_idx" ON {{schema}}."troupe_jobs" USING btree ("pipeline_id", "id") WHERE "pipeline_id" IS NOT NULL;
