-- Usage queries: one index per sort of GET /api/usage (and per filter), each ending in the
-- snapshot's unique key so keyset pages walk it in order; and a NOTIFY per tenant when its
-- snapshots change, so the live stream wakes on every instance.
CREATE INDEX "troupe_usage_snapshots_credits_idx" ON "troupe_usage_snapshots" USING btree ("tenant_id", "credits_cents", "ts", "source_id", "message_id");
--> statement-breakpoint
CREATE INDEX "troupe_usage_snapshots_report_name_idx" ON "troupe_usage_snapshots" USING btree ("tenant_id", (coalesce("report_name", '')), "ts", "source_id", "message_id");
--> statement-breakpoint
CREATE INDEX "troupe_usage_snapshots_report_idx" ON "troupe_usage_snapshots" USING btree ("tenant_id", "report_id", "ts", "source_id", "message_id");
--> statement-breakpoint
CREATE INDEX "troupe_usage_snapshots_source_idx" ON "troupe_usage_snapshots" USING btree ("tenant_id", "source_id", "ts", "message_id");
--> statement-breakpoint
CREATE FUNCTION "troupe_usage_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('troupe_usage', t.tenant_id) FROM (SELECT DISTINCT tenant_id FROM changed) t;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "troupe_usage_inserted" AFTER INSERT ON "troupe_usage_snapshots" REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION "troupe_usage_notify"();
--> statement-breakpoint
CREATE TRIGGER "troupe_usage_updated" AFTER UPDATE ON "troupe_usage_snapshots" REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION "troupe_usage_notify"();
