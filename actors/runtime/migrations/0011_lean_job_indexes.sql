-- Fewer index entries per job: every update of a job row that changes its status writes a
-- new entry in each index of the row (none of these updates can be HOT), three times in a
-- job's life (queued, running, succeeded). A job without a tenant is never looked up by
-- tenant in an index (a list of the jobs without one reads the primary key), and a job that
-- succeeded is never looked up by status in one (it is the bulk of the table: a list of the
-- succeeded jobs reads the primary key, newest first).
DROP INDEX {{schema}}."troupe_jobs_tenant_idx";
--> statement-breakpoint
CREATE INDEX "troupe_jobs_tenant_idx" ON {{schema}}."troupe_jobs" USING btree ("tenant_id","id") WHERE "tenant_id" IS NOT NULL;
--> statement-breakpoint
DROP INDEX {{schema}}."troupe_jobs_status_idx";
--> statement-breakpoint
CREATE INDEX "troupe_jobs_status_idx" ON {{schema}}."troupe_jobs" USING btree ("status","id") WHERE "status" <> 'succeeded';
