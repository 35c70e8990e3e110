/**
 * The OpenAI-compatible writer against a local chat-completions server: valid JSON, invalid
 * JSON then valid, a quiz citing a page outside the lesson (rejected and asked again), 429
 * with Retry-After and 500 retried, and giving up with a clear error.
 */
import assert from "node:assert/strict";
import { DocumentStats } from "./text.ts";
import { InvalidReplyError, OpenAiWriter } from "./openai.ts";

const good = {
  summary: "Photosynthesis stores light energy in glucose.",
  keyPoints: ["Light is absorbed.", "Glucose is made.", "Oxygen is released."],
  quiz: [{
    question: "What stores the energy?",
    choices: ["glucose", "water", "salt"],
    answer: 0,
    explanation: "Page 4 says so.",
    page: 4,
  }],
};

function standIn(replies: (() => Response)[]) {
  const seen: {
    body: { model: string; response_format: unknown; messages: unknown[] };
    auth: string | null;
  }[] = [];
  let i = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (new URL(req.url).pathname !== "/v1/chat/completions") {
      return new Response("no", { status: 404 });
    }
    seen.push({ body: await req.json(), auth: req.headers.get("authorization") });
    return replies[Math.min(i++, replies.length - 1)]!();
  });
  return { server, seen, url: `http://127.0.0.1:${server.addr.port}/v1` };
}

const content = (text: string) => () =>
  Response.json({ choices: [{ message: { role: "assistant", content: text } }] });

const lesson = {
  title: "Photosynthesis",
  passages: [{ text: "Photosynthesis stores light energy in glucose.", page: 4 }],
};

Deno.test("openai writer: validated JSON, retries on invalid output and on 429/500", async () => {
  const s = standIn([
    () => new Response("slow down", { status: 429, headers: { "retry-after": "0.05" } }),
    () => new Response("oops", { status: 500 }),
    content("this is not JSON"),
    content(JSON.stringify({ ...good, quiz: [{ ...good.quiz[0], page: 99 }] })),
    content(JSON.stringify(good)),
  ]);
  try {
    const writer = new OpenAiWriter({
      baseUrl: s.url,
      apiKey: "k",
      model: "m",
      attempts: 3,
      backoffMs: 10,
    });
    const lessonOut = await writer.lesson(lesson, new DocumentStats());
    assert.deepEqual(lessonOut, good);
    assert.equal(s.seen.length, 5);
    assert.equal(s.seen[0]!.auth, "Bearer k");
    assert.equal(s.seen[0]!.body.model, "m");
    assert.deepEqual(s.seen[0]!.body.response_format, { type: "json_object" });
    assert.match(JSON.stringify(s.seen[4]!.body.messages), /last reply was invalid/);
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("openai writer: gives up with a clear error", async () => {
  const s = standIn([content("{}")]);
  try {
    const writer = new OpenAiWriter({
      baseUrl: s.url,
      apiKey: "k",
      model: "m",
      attempts: 2,
      backoffMs: 1,
    });
    await assert.rejects(() => writer.lesson(lesson, new DocumentStats()), InvalidReplyError);
    assert.equal(s.seen.length, 2);
  } finally {
    await s.server.shutdown();
  }
  const down = standIn([() => new Response("bad key", { status: 401 })]);
  try {
    const writer = new OpenAiWriter({ baseUrl: down.url, apiKey: "k", model: "m" });
    await assert.rejects(() => writer.lesson(lesson, new DocumentStats()), /answered 401/);
  } finally {
    await down.server.shutdown();
  }
});
