-- The lexical index of course passages: lexemes made by actors/courses/lexicon.ts (short
-- identifiers and code punctuation kept: `lm`, `t.test`, `c++`, `-l`), written with each
-- passage. Passages written before it get the text-search parser's lexemes.
ALTER TABLE "troupe_course_chunks" ADD COLUMN "lexemes" tsvector;--> statement-breakpoint
UPDATE "troupe_course_chunks" SET "lexemes" = "tsv" WHERE "lexemes" IS NULL;--> statement-breakpoint
CREATE INDEX "troupe_course_chunks_lexemes_idx" ON "troupe_course_chunks" USING gin ("lexemes");
