-- Each dataset holds its uploaded blob (troupe_blob_refs, from the app's storage migrations).
INSERT INTO "troupe_blob_refs" ("sha256", "owner_kind", "owner_id", "tenant_id", "created_at")
SELECT "blob_sha256", 'dataset', "id", "tenant_id", "created_at" FROM "troupe_datasets"
ON CONFLICT DO NOTHING;
