/** The OpenAI-compatible embedder against a local `/v1/embeddings` server: batching, order, 429/500 retries. */
import assert from "node:assert/strict";
import { OpenAiEmbedder } from "./openai.ts";

Deno.test("openai embedder: batches, keeps order, normalises, retries 429 and 500", async () => {
  let calls = 0;
  const sizes: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    calls++;
    if (calls === 1) {
      return new Response("busy", { status: 429, headers: { "retry-after": "0.02" } });
    }
    if (calls === 2) return new Response("oops", { status: 500 });
    const body = await req.json() as { input: string[]; model: string };
    sizes.push(body.input.length);
    // Out of order on purpose, as the API may answer.
    const data = body.input.map((text, index) => ({ index, embedding: [text.length, 1, 0, 0] }))
      .reverse();
    return Response.json({ data, model: body.model });
  });
  try {
    const e = new OpenAiEmbedder({
      baseUrl: `http://127.0.0.1:${server.addr.port}/v1`,
      apiKey: "k",
      model: "text-embedding-3-small",
      dimensions: 4,
      backoffMs: 5,
    });
    const texts = Array.from({ length: 100 }, (_, i) => "x".repeat(i + 1));
    const vecs = await e.embed(texts);
    assert.deepEqual(sizes, [96, 4]);
    assert.equal(vecs.length, 100);
    for (const [i, v] of vecs.entries()) {
      const n = Math.hypot(i + 1, 1);
      assert.ok(Math.abs(v[0]! - (i + 1) / n) < 1e-6, "in input order, normalised");
    }
  } finally {
    await server.shutdown();
  }
});
