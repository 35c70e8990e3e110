-- A tenant's own per-key request limit (requests a minute); NULL means the server's default.
ALTER TABLE "troupe_tenants" ADD COLUMN "rate_limit_per_minute" integer;
