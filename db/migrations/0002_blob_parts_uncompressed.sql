-- Blob parts are stored without TOAST compression: pglz on 1 MiB parts made uploads
-- CPU-bound on the server (50 MB: 1.7 s -> 1.3 s to store), and reads skip decompression.
ALTER TABLE "troupe_blob_parts" ALTER COLUMN "data" SET STORAGE EXTERNAL;
