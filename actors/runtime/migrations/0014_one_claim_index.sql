-- One index of queued jobs instead of two: every claim finds its tenant groups first and takes
-- each group's jobs from its range of `troupe_jobs_tenant_claim_idx` (the jobs without a tenant
-- are the group ''), in the same order as the global claim index, which nothing needs any
-- more. A job enqueued writes one index entry fewer.
DROP INDEX {{schema}}."troupe_jobs_claim_idx";
