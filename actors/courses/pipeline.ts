/**
 * PDF → course, as short actor messages (each idempotent):
 *
 * 1. `course.start` (key `course:<id>`): opens each file once to read its page count and
 *    outline; a non-PDF, encrypted or corrupt file fails alone, with its code. Fans out one
 *    `course.extract` per range of pages (20 a message).
 * 2. `course.extract` (key `pdf:<tenant>:<sha256>:<from>`): extracts the range's lines into
 *    `troupe_pdf_pages`, keyed by the file's SHA-256, so the same PDF is extracted once
 *    whatever course it is in; skips pages already there, unless an older extraction
 *    (`EXTRACTION_VERSION`) stored them: those are extracted again and replaced. Reports to the course. The key is
 *    the tenant's own: a tenant's extraction never waits on another's. Pages extracted for
 *    another tenant are used, but nothing a tenant sees (results, progress) tells it so.
 * 3. `course.extracted` (key `course:<id>`, one at a time): counts the pages its own ranges
 *    reported; when every page of every file is in, sends `course.build`. A range that fails
 *    for good fails its file (`onDeadLetter`).
 * 4. `course.build` (key `course:<id>`): each file's pages cleaned (`page_clean.ts`: page
 *    furniture, control characters and line-end hyphens out, back matter set apart), then
 *    modules and lessons from the outline without back matter entries (or from headings
 *    found in the text; the title page names the file), each lesson's text cut at its
 *    position (`lessons.ts`),
 *    section-sized chunks for search (deterministic, unique ids) with their embeddings (same
 *    ids), summaries, key points and quizzes from the writer, made distinct across the
 *    course (`distinct.ts`).
 *
 * Progress is reported on the course (pages extracted / total) and on each message's job.
 */
import { abortedActor } from "./actors/aborted.ts";
import { buildActor, moduleSummary } from "./actors/build.ts";
import {
  courseContext,
  type CoursePipelineOptions,
  type Lesson,
  type Module,
} from "./actors/_context.ts";
import { extractActor } from "./actors/extract.ts";
import { extractedActor } from "./actors/extracted.ts";
import { failedActor } from "./actors/failed.ts";
import { startActor } from "./actors/start.ts";
import { structure } from "./lessons.ts";

export { moduleSummary, structure };
export type { CoursePipelineOptions, Lesson, Module };

/** The course pipeline's actors, one file each under `actors/`. */
export function courseActors(o: CoursePipelineOptions) {
  const c = courseContext(o);
  return [
    startActor(c),
    extractActor(c),
    extractedActor(c),
    buildActor(c),
    failedActor(c),
    abortedActor(c),
  ];
}
