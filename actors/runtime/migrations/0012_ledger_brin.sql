-- The ledger's age index as BRIN: a ledger row is written with every committed message, and
-- its age is read only by the retention cleanup (the rows before a cutoff). Rows go in in
-- time order, so a block range summary finds them; a row adds no index entry (a B-tree
-- entry and its WAL record a message otherwise).
DROP INDEX {{schema}}."troupe_processed_at_idx";
--> statement-breakpoint
CREATE INDEX "troupe_processed_at_idx" ON {{schema}}."troupe_processed_messages" USING brin ("processed_at");
