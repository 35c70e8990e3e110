-- The URL a source's syncs call back when they end (actors/system/callback.ts); null: none.
ALTER TABLE "troupe_usage_sources" ADD COLUMN "callback_url" text;
