-- The lexical index of course passages: lexemes made by actors/courses/lexicon.ts (short
-- identifiers and code punctuation kept: `lm`, `t.test`, `c++`, `-l`), written with each
-- passage and scored in memory (actors/courses/lexical_index.ts). Passages written before it
-- keep the text-search parser's lexemes; the parser's column is no longer read.
ALTER TABLE "troupe_course_chunks" ADD COLUMN "lexemes" tsvector;--> statement-breakpoint
UPDATE "troupe_course_chunks" SET "lexemes" = "tsv" WHERE "lexemes" IS NULL;--> statement-breakpoint
ALTER TABLE "troupe_course_chunks" DROP COLUMN "tsv";
