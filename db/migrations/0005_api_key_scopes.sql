-- A key's scope ('full', or 'read': reads only) and, for a key replaced by a rotation, when it
-- stops working (NULL: until revoked).
ALTER TABLE "troupe_api_keys" ADD COLUMN "scope" text DEFAULT 'full' NOT NULL;--> statement-breakpoint
ALTER TABLE "troupe_api_keys" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "troupe_api_keys" ADD CONSTRAINT "troupe_api_keys_scope_check" CHECK ("scope" IN ('full', 'read'));
