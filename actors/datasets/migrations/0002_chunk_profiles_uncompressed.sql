-- Chunk profiles (~230 KB of JSON a chunk of 1 MiB, mostly base64 sketches) are stored without
-- TOAST compression: pglz on each was most of the server's CPU for the chunk's commit (7.5 ms
-- against 2.3 ms a profile, measured), and the merge reads them back without decompressing.
ALTER TABLE "troupe_dataset_chunks" ALTER COLUMN "profile" SET STORAGE EXTERNAL;
