-- Each tenant's key for signing completion callbacks (HMAC-SHA256), sealed with SECRET_KEYS
-- (db/secrets.ts). A rotation replaces it; deleted with its tenant.
CREATE TABLE "troupe_callback_secrets" (
	"tenant_id" text PRIMARY KEY NOT NULL REFERENCES "troupe_tenants"("id") ON DELETE CASCADE,
	"secret_sealed" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
