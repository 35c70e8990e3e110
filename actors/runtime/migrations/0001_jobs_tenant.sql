CREATE INDEX "troupe_jobs_tenant_idx" ON {{schema}}."troupe_jobs" USING btree ("tenant_id","id");
