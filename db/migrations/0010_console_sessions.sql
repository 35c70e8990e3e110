-- Console sessions (routes/console/session.ts): the SHA-256 of the cookie's random id, the key the
-- session acts as, its CSRF token and its two expiries. Any instance resumes a session; a logout
-- deletes the row; a key deleted or revoked takes its sessions with it.
CREATE TABLE "troupe_console_sessions" (
	"id_hash" text PRIMARY KEY NOT NULL,
	"api_key_id" text NOT NULL REFERENCES "troupe_api_keys"("id") ON DELETE CASCADE,
	"csrf" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"idle_until" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_console_sessions_expires_idx" ON "troupe_console_sessions" USING btree ("expires_at");
