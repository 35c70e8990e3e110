/**
 * The local adapters `main.ts` picks when nothing is configured, for tests and benchmarks that
 * build their own world: the workloads default none of them.
 */
import type { SqlExecutor } from "@troupe/runtime";
import { HashingEmbedder } from "../actors/courses/embeddings/hashing.ts";
import type { TextEmbedder } from "../actors/courses/embeddings/port.ts";
import { InlineExtractor, type PageExtractor } from "../actors/courses/extract.ts";
import { PgVectorStore } from "../actors/courses/vectors/pg.ts";
import type { VectorStore } from "../actors/courses/vectors/port.ts";
import { LocalWriter } from "../actors/courses/writer/local.ts";
import type { CourseWriter } from "../actors/courses/writer/port.ts";
import { ChunkProcessor } from "../actors/datasets/chunk_work.ts";

/** The course workload's adapters over `db`: extraction on this thread, local writer and search. */
export function localCourseAdapters(db: SqlExecutor): {
  extractor: PageExtractor;
  writer: CourseWriter;
  embedder: TextEmbedder;
  vectors: VectorStore;
} {
  return {
    extractor: new InlineExtractor(),
    writer: new LocalWriter(),
    embedder: new HashingEmbedder(),
    vectors: new PgVectorStore(db),
  };
}

/** The dataset workload's adapters: chunks processed on this thread. */
export function localDatasetAdapters(): { processor: ChunkProcessor } {
  return { processor: new ChunkProcessor(0) };
}
