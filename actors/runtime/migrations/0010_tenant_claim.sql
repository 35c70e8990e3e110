-- Fair claims across tenants: the queued jobs of each tenant in queue order, so a claim finds
-- the tenants with due work by a skip scan and takes each one's share by an index range, never
-- walking another tenant's backlog. Jobs without a tenant form the group ''.
CREATE INDEX "troupe_jobs_tenant_claim_idx" ON {{schema}}."troupe_jobs" USING btree ((coalesce("tenant_id", '')),"priority" DESC NULLS LAST,"run_at","id") WHERE "troupe_jobs"."status" = 'queued';
