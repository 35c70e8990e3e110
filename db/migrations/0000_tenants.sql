CREATE TABLE "troupe_api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "troupe_api_keys_hash_unique" UNIQUE("hash")
);
--> statement-breakpoint
CREATE TABLE "troupe_audit_log" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text,
	"api_key_id" text,
	"action" text NOT NULL,
	"target_type" text,
	"target_id" text,
	"details" jsonb,
	"ip" text,
	"request_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "troupe_tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "troupe_tenants_name_unique" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "troupe_api_keys" ADD CONSTRAINT "troupe_api_keys_tenant_id_troupe_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."troupe_tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "troupe_api_keys_tenant_idx" ON "troupe_api_keys" USING btree ("tenant_id");--> statement-breakpoint
CREATE INDEX "troupe_audit_log_tenant_idx" ON "troupe_audit_log" USING btree ("tenant_id","id");--> statement-breakpoint
CREATE INDEX "troupe_audit_log_created_idx" ON "troupe_audit_log" USING btree ("created_at");
