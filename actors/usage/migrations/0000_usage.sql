-- Report syncs: usage snapshots (one row per tenant, source and external message), exact
-- daily and per-report aggregates kept in the transaction that writes the snapshots, and
-- the names of the reports messages refer to, cached with an expiry.
CREATE SEQUENCE "troupe_usage_seq";
--> statement-breakpoint
CREATE TABLE "troupe_usage_snapshots" (
	"tenant_id" text NOT NULL,
	"source_id" text NOT NULL,
	"message_id" text NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"day" date NOT NULL,
	"credits_cents" bigint NOT NULL,
	"report_id" text,
	"report_name" text,
	"seq" bigint NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "troupe_usage_snapshots_pk" PRIMARY KEY ("tenant_id", "source_id", "message_id")
);
--> statement-breakpoint
CREATE INDEX "troupe_usage_snapshots_ts_idx" ON "troupe_usage_snapshots" USING btree ("tenant_id", "ts", "source_id", "message_id");
--> statement-breakpoint
CREATE INDEX "troupe_usage_snapshots_seq_idx" ON "troupe_usage_snapshots" USING btree ("tenant_id", "seq");
--> statement-breakpoint
CREATE TABLE "troupe_usage_daily" (
	"tenant_id" text NOT NULL,
	"source_id" text NOT NULL,
	"day" date NOT NULL,
	"credits_cents" bigint NOT NULL,
	"messages" bigint NOT NULL,
	CONSTRAINT "troupe_usage_daily_pk" PRIMARY KEY ("tenant_id", "day", "source_id")
);
--> statement-breakpoint
CREATE TABLE "troupe_usage_report_totals" (
	"tenant_id" text NOT NULL,
	"source_id" text NOT NULL,
	"report_key" text NOT NULL,
	"report_name" text,
	"credits_cents" bigint NOT NULL,
	"messages" bigint NOT NULL,
	CONSTRAINT "troupe_usage_report_totals_pk" PRIMARY KEY ("tenant_id", "source_id", "report_key")
);
--> statement-breakpoint
CREATE TABLE "troupe_usage_reports" (
	"tenant_id" text NOT NULL,
	"source_id" text NOT NULL,
	"report_id" text NOT NULL,
	"name" text,
	"found" boolean NOT NULL,
	"fetched_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "troupe_usage_reports_pk" PRIMARY KEY ("tenant_id", "source_id", "report_id")
);
