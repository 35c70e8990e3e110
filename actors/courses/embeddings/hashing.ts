/**
 * A local, deterministic embedder with no weights to download: signed feature hashing of
 * lower-cased words, word bigrams and character 3-grams into a fixed number of dimensions,
 * with sublinear term frequency, L2-normalised. It is **lexical**: texts are close when they
 * share words or word pieces (so "membranes" is near "membrane"), not when they mean the same
 * thing in other words. Production can use any OpenAI-compatible embeddings API instead.
 */
import { StepBudget } from "@troupe/runtime";
import type { TextEmbedder } from "./port.ts";

/** FNV-1a over a string, 32 bits. */
function fnv1a(text: string, seed = 2166136261): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

export class HashingEmbedder implements TextEmbedder {
  readonly name = "hashing";
  constructor(readonly dimensions = 256) {}

  /** The texts' vectors; a long batch gives the event loop back every 10 ms. */
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const loop = new StepBudget(0);
    const out: Float32Array[] = [];
    for (const t of texts) {
      out.push(this.#one(t));
      await loop.pause();
    }
    return out;
  }

  #one(text: string): Float32Array {
    const counts = new Map<number, number>();
    const add = (feature: string, weight: number) => {
      const h = fnv1a(feature);
      const index = h % this.dimensions;
      const sign = (fnv1a(feature, 0x9747b28c) & 1) === 0 ? 1 : -1;
      counts.set(index, (counts.get(index) ?? 0) + sign * weight);
    };
    const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      add(`w:${w}`, 1);
      if (i > 0) add(`b:${words[i - 1]} ${w}`, 0.5);
      const padded = `<${w}>`;
      for (let j = 0; j + 3 <= padded.length; j++) add(`c:${padded.slice(j, j + 3)}`, 0.3);
    }
    const v = new Float32Array(this.dimensions);
    let norm = 0;
    for (const [i, c] of counts) {
      const x = Math.sign(c) * Math.log1p(Math.abs(c));
      v[i] = x;
      norm += x * x;
    }
    norm = Math.sqrt(norm);
    if (norm > 0) { for (let i = 0; i < v.length; i++) v[i]! /= norm; }
    return v;
  }
}

/** Cosine similarity of two L2-normalised vectors (their dot product). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
