/**
 * Embeddings from any OpenAI-compatible `/embeddings` endpoint (`OPENAI_BASE_URL`,
 * `OPENAI_API_KEY`, `OPENAI_EMBEDDING_MODEL`): batches of up to 96 inputs, 429/5xx retried
 * with backoff honouring `Retry-After`, vectors L2-normalised (cosine = dot product).
 */
import type { TextEmbedder } from "./port.ts";

export interface OpenAiEmbedderOptions {
  baseUrl: string;
  apiKey: string;
  model: string;
  dimensions: number;
  retries?: number;
  backoffMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

export class OpenAiEmbedder implements TextEmbedder {
  readonly name = "openai";
  readonly dimensions: number;
  readonly #o: Required<OpenAiEmbedderOptions>;

  constructor(o: OpenAiEmbedderOptions) {
    this.#o = { retries: 4, backoffMs: 500, fetch: globalThis.fetch, ...o };
    this.dimensions = o.dimensions;
  }

  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += 96) {
      out.push(...await this.#batch(texts.slice(i, i + 96)));
    }
    return out;
  }

  async #batch(input: readonly string[]): Promise<Float32Array[]> {
    const url = `${this.#o.baseUrl.replace(/\/+$/, "")}/embeddings`;
    for (let retry = 0;; retry++) {
      const res = await this.#o.fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${this.#o.apiKey}` },
        body: JSON.stringify({ model: this.#o.model, input, dimensions: this.#o.dimensions }),
      });
      if (res.ok) {
        const body = await res.json() as { data?: { index: number; embedding: number[] }[] };
        const data = [...(body.data ?? [])].sort((a, b) => a.index - b.index);
        if (data.length !== input.length) throw new Error("embeddings: wrong number of vectors");
        return data.map((d) => normalise(Float32Array.from(d.embedding), this.dimensions));
      }
      const text = await res.text();
      if ((res.status === 429 || res.status >= 500) && retry < this.#o.retries) {
        const after = Number(res.headers.get("retry-after"));
        await new Promise((r) =>
          setTimeout(
            r,
            Number.isFinite(after) && after > 0
              ? Math.min(after * 1000, 30_000)
              : this.#o.backoffMs * 2 ** retry,
          )
        );
        continue;
      }
      throw new Error(`embeddings answered ${res.status}: ${text.slice(0, 200)}`);
    }
  }
}

function normalise(v: Float32Array, dimensions: number): Float32Array {
  if (v.length !== dimensions) {
    throw new Error(`embeddings: ${v.length} dimensions, expected ${dimensions}`);
  }
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  if (n > 0) { for (let i = 0; i < v.length; i++) v[i]! /= n; }
  return v;
}
