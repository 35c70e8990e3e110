-- The IANA zone that a tenant's usage days, daily aggregates and statements follow.
ALTER TABLE "troupe_tenants" ADD COLUMN "time_zone" text DEFAULT 'UTC' NOT NULL;
