/**
 * Vectors in ChromaDB through the official `chromadb` client. One collection (cosine space)
 * holds every course's passages with `tenantId` and `courseId` metadata; every query and
 * delete filters on them. Embeddings are always passed in (no embedding function: nothing is
 * downloaded). Upserts are by the passages' deterministic ids, so a redelivered batch
 * changes nothing; they are not part of a database transaction (`transactional: false`).
 */
import { ChromaClient, type Collection } from "chromadb";
import type { VectorHit, VectorItem, VectorStore } from "./port.ts";

export interface ChromaOptions {
  /** `http://host:port` of the Chroma server. */
  url: string;
  /** @default "troupe_course_vectors" (names need 3+ characters) */
  collection?: string;
}

export class ChromaVectorStore implements VectorStore {
  readonly kind = "chroma" as const;
  readonly transactional = false;
  readonly #client: ChromaClient;
  readonly #name: string;
  #collection: Promise<Collection> | null = null;

  constructor({ url, collection = "troupe_course_vectors" }: ChromaOptions) {
    const u = new URL(url);
    this.#client = new ChromaClient({
      host: u.hostname,
      port: Number(u.port || (u.protocol === "https:" ? 443 : 8000)),
      ssl: u.protocol === "https:",
    });
    this.#name = collection;
  }

  #get(): Promise<Collection> {
    return this.#collection ??= this.#client.getOrCreateCollection({
      name: this.#name,
      embeddingFunction: null,
      configuration: { hnsw: { space: "cosine" } },
    }).catch((err) => {
      this.#collection = null;
      throw err;
    });
  }

  async upsert(items: readonly VectorItem[]): Promise<void> {
    if (items.length === 0) return;
    const c = await this.#get();
    for (let i = 0; i < items.length; i += 500) {
      const batch = items.slice(i, i + 500);
      await c.upsert({
        ids: batch.map((it) => it.id),
        embeddings: batch.map((it) => Array.from(it.vector)),
        metadatas: batch.map((it) => ({ tenantId: it.tenantId, courseId: it.courseId })),
      });
    }
  }

  async query(
    vector: Float32Array,
    filter: { tenantId: string; courseId: string },
    k: number,
  ): Promise<VectorHit[]> {
    const c = await this.#get();
    const res = await c.query({
      queryEmbeddings: [Array.from(vector)],
      nResults: k,
      where: { $and: [{ tenantId: filter.tenantId }, { courseId: filter.courseId }] },
      include: ["distances"],
    });
    const ids = res.ids[0] ?? [];
    const distances = res.distances?.[0] ?? [];
    // Cosine distance is 1 - similarity.
    return ids.map((id, i) => ({ id, score: 1 - (distances[i] ?? 1) }));
  }

  async count(filter: { tenantId: string; courseId: string }): Promise<number> {
    const c = await this.#get();
    const res = await c.get({
      where: { $and: [{ tenantId: filter.tenantId }, { courseId: filter.courseId }] },
      include: [],
    });
    return res.ids.length;
  }

  async deleteWhere(filter: { courseId: string }): Promise<void> {
    const c = await this.#get();
    await c.delete({ where: { courseId: filter.courseId } });
  }
}
