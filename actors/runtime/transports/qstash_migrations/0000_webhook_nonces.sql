CREATE TABLE {{schema}}."troupe_webhook_nonces" (
	"jti" text PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_webhook_nonces_expires_idx" ON {{schema}}."troupe_webhook_nonces" USING btree ("expires_at");