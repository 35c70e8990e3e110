-- The version of the extraction that wrote a page's lines (`EXTRACTION_VERSION` in
-- actors/courses/pdf.ts): pages stored by an older one are extracted again when a course
-- needs them. Version 1 lines are `{ text, size }`; version 2 adds each line's `y`.
ALTER TABLE "troupe_pdf_pages" ADD COLUMN "version" integer DEFAULT 1 NOT NULL;
