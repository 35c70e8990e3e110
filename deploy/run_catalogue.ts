/**
 * What `deno task run` can run: the actors of this deployment (from the code, without opening
 * the database) and the uploads that start the dataset and course pipelines.
 */
import { z } from "zod";
import type { AnyActor, SqlDatabase } from "@troupe/runtime";
import type { BlobStore } from "../db/blobs/port.ts";
import { datasetActors } from "../actors/datasets/pipeline.ts";
import { courseActors } from "../actors/courses/pipeline.ts";
import { uploadQuery } from "../routes/datasets.ts";
import type { Config } from "./config.ts";

/** An upload: `--file` sends the files to its route, the JSON argument gives its options. */
export interface UploadTarget {
  kind: "dataset" | "course";
  /** The names that select it on the command line. */
  names: readonly string[];
  /** The API route (under `/api/v1`). */
  path: string;
  /** Files it takes: one, or several. */
  files: "one" | "many";
  options: z.ZodType;
  summary: string;
}

export const UPLOADS: readonly UploadTarget[] = [
  {
    kind: "dataset",
    names: ["dataset", "datasets", "dataset.ingest"],
    path: "/datasets",
    files: "one",
    options: uploadQuery.omit({ options: true }).extend({
      options: z.record(z.string(), z.unknown()).optional().describe("cleaning rules"),
    }),
    summary: "a CSV, TSV, JSON, NDJSON or XLSX file (optionally gzipped) into a dataset",
  },
  {
    kind: "course",
    names: ["course", "courses", "course.ingest"],
    path: "/courses",
    files: "many",
    options: z.object({ title: z.string().min(1).max(200).optional() }),
    summary: "1 to 20 PDFs into a course",
  },
];

/** The upload `name` selects, if any. */
export function uploadNamed(name: string): UploadTarget | undefined {
  return UPLOADS.find((u) => u.names.includes(name));
}

/** A database that is never opened: defining actors touches none. */
const CLOSED = new Proxy({}, {
  get: () => () => Promise.reject(new Error("the catalogue has no database")),
}) as unknown;

/**
 * The actors `main.ts` composes for `config`, defined over nothing (no database, no workers):
 * enough to read their names, inputs and whether the API may enqueue them.
 */
export async function actorCatalogue(config: Config): Promise<AnyActor[]> {
  const { actorsFor } = await import("../main.ts");
  const db = CLOSED as SqlDatabase;
  const blobs = CLOSED as BlobStore;
  const none = CLOSED as never;
  return actorsFor(config, db, [], [
    ...datasetActors({ db, blobs, processor: none }),
    ...courseActors({ db, blobs, extractor: none, writer: none, embedder: none, vectors: none }),
  ]);
}

/** An input schema as JSON Schema (what a transform or a refinement cannot say is left open). */
export function jsonSchemaOf(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  } catch {
    return {};
  }
}

/** The `--list` text: exposed actors, uploads, then internal actors. */
export function listing(actors: readonly AnyActor[]): string {
  const out: string[] = [];
  const schema = (s: z.ZodType) => JSON.stringify(jsonSchemaOf(s));
  out.push("Actors (deno task run <actor> '<json input>'):");
  for (const a of actors.filter((a) => a.exposed)) out.push(`  ${a.name}  ${schema(a.input)}`);
  out.push("", "Uploads (deno task run <name> --file <path> ['<json options>']):");
  for (const u of UPLOADS) {
    out.push(`  ${u.names.join(" | ")}: ${u.summary}`, `    options ${schema(u.options)}`);
  }
  const internal = actors.filter((a) => !a.exposed).map((a) => a.name);
  if (internal.length) {
    out.push(
      "",
      `Internal (run by pipelines and schedules, not from here): ${internal.join(", ")}`,
    );
  }
  return out.join("\n");
}
