/**
 * The embedder port: texts to vectors for course search. Adapters: `HashingEmbedder` (local,
 * deterministic, lexical) and `OpenAiEmbedder` (any OpenAI-compatible embeddings API).
 */
export interface TextEmbedder {
  /** The adapter's name, stored with the vectors it made. */
  readonly name: string;
  /** Length of every vector it returns. */
  readonly dimensions: number;
  /** One L2-normalised vector per text, in order. */
  embed(texts: readonly string[]): Promise<Float32Array[]>;
}
