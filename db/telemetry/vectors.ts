/**
 * Spans around the course workload's vector store and embedder: one internal span a call, with
 * the store's or model's name and the sizes involved (never the texts or vectors). The HTTP
 * calls these make (Chroma, an OpenAI-compatible API) are spans of their own under it when the
 * runtime traces `fetch` (Deno's built-in OpenTelemetry does).
 */
import { type Attributes, trace, type Tracer } from "@opentelemetry/api";
import type { TextEmbedder } from "../../actors/courses/embeddings/port.ts";
import type { VectorStore } from "../../actors/courses/vectors/port.ts";
import { inSpan, TRACER_NAME } from "./tracing.ts";

/** `store` with a span around each call. */
export function tracedVectors(
  store: VectorStore,
  tracer: Tracer = trace.getTracer(TRACER_NAME),
): VectorStore {
  const span = <T>(op: string, attributes: Attributes, fn: () => Promise<T>) =>
    inSpan(tracer, `vectors ${op}`, {
      attributes: { "troupe.vectors.store": store.kind, ...attributes },
    }, fn);
  return {
    kind: store.kind,
    transactional: store.transactional,
    upsert: (items, tx) =>
      span("upsert", { "troupe.vectors.count": items.length }, () => store.upsert(items, tx)),
    query: (vector, filter, k) =>
      span("query", { "troupe.vectors.k": k }, () => store.query(vector, filter, k)),
    count: (filter) => span("count", {}, () => store.count(filter)),
    deleteWhere: (filter, tx) => span("delete", {}, () => store.deleteWhere(filter, tx)),
  };
}

/** `embedder` with a span around each call. */
export function tracedEmbedder(
  embedder: TextEmbedder,
  tracer: Tracer = trace.getTracer(TRACER_NAME),
): TextEmbedder {
  return {
    name: embedder.name,
    dimensions: embedder.dimensions,
    embed: (texts) =>
      inSpan(tracer, "embed", {
        attributes: {
          "troupe.embedder": embedder.name,
          "troupe.embedder.texts": texts.length,
        },
      }, () => embedder.embed(texts)),
  };
}
