/**
 * A course writer over any OpenAI-compatible chat-completions API (`OPENAI_BASE_URL`,
 * `OPENAI_API_KEY`, `OPENAI_MODEL`). It asks for JSON (`response_format: json_object`),
 * validates the reply with zod, and asks again when the reply is not valid (up to
 * `attempts`); 429 and 5xx answers are retried with backoff, honouring `Retry-After`.
 * Questions must cite one of the lesson's pages and the answer must be one of the choices,
 * or the reply is rejected: the model writes only from the text it is given.
 */
import { z } from "zod";
import type { CourseWriter, LessonSource, WrittenLesson } from "./port.ts";
import type { DocumentStats } from "./text.ts";

export interface OpenAiWriterOptions {
  baseUrl: string;
  apiKey: string;
  model: string;
  /** Tries per lesson for a valid reply. @default 3 */
  attempts?: number;
  /** Retries of 429/5xx per request. @default 4 */
  retries?: number;
  fetch?: typeof fetch;
  /** Base delay of the backoff in ms. @default 500 */
  backoffMs?: number;
}

const lessonReply = z.object({
  summary: z.string().min(1).max(2000),
  keyPoints: z.array(z.string().min(1).max(500)).min(3).max(7),
  quiz: z.array(z.object({
    question: z.string().min(1).max(500),
    choices: z.array(z.string().min(1).max(200)).min(2).max(6),
    answer: z.number().int().min(0),
    explanation: z.string().max(1000),
    page: z.number().int().min(1),
  })).max(10),
});

export class InvalidReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidReplyError";
  }
}

export class OpenAiWriter implements CourseWriter {
  readonly name = "openai";
  readonly #o: Required<Omit<OpenAiWriterOptions, "fetch">> & { fetch: typeof fetch };

  constructor(o: OpenAiWriterOptions) {
    this.#o = {
      attempts: 3,
      retries: 4,
      backoffMs: 500,
      ...o,
      fetch: o.fetch ?? fetch,
    };
  }

  async lesson(lesson: LessonSource, _doc: DocumentStats): Promise<WrittenLesson> {
    const pages = new Set(lesson.passages.map((p) => p.page));
    const text = lesson.passages.map((p) => `[page ${p.page}]\n${p.text}`).join("\n\n");
    const messages = [
      {
        role: "system",
        content: "You write course lessons from a textbook excerpt. Use only the excerpt. " +
          "Reply with JSON: {summary, keyPoints (3-7 strings), quiz: [{question, choices, " +
          "answer (index into choices), explanation, page}]}. Every question's page must be " +
          "one of the excerpt's [page N] markers and its answer must be supported there.",
      },
      { role: "user", content: `Lesson: ${lesson.title}\n\n${text}` },
    ];
    let problem = "";
    for (let attempt = 1; attempt <= this.#o.attempts; attempt++) {
      const content = await this.#complete(
        problem
          ? [...messages, {
            role: "user",
            content: `Your last reply was invalid: ${problem}. Reply again.`,
          }]
          : messages,
      );
      let json: unknown;
      try {
        json = JSON.parse(content);
      } catch {
        problem = "not JSON";
        continue;
      }
      const parsed = lessonReply.safeParse(json);
      if (!parsed.success) {
        problem = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
        continue;
      }
      const bad = parsed.data.quiz.find((q) => q.answer >= q.choices.length || !pages.has(q.page));
      if (bad) {
        problem =
          `question "${bad.question}" has an answer outside its choices or a page not in the excerpt`;
        continue;
      }
      return parsed.data;
    }
    throw new InvalidReplyError(`no valid lesson after ${this.#o.attempts} tries: ${problem}`);
  }

  async #complete(messages: { role: string; content: string }[]): Promise<string> {
    const url = `${this.#o.baseUrl.replace(/\/+$/, "")}/chat/completions`;
    for (let retry = 0;; retry++) {
      const res = await this.#o.fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${this.#o.apiKey}`,
        },
        body: JSON.stringify({
          model: this.#o.model,
          messages,
          response_format: { type: "json_object" },
          temperature: 0.2,
        }),
      });
      if (res.ok) {
        const body = await res.json() as { choices?: { message?: { content?: string } }[] };
        return body.choices?.[0]?.message?.content ?? "";
      }
      const text = await res.text();
      if ((res.status === 429 || res.status >= 500) && retry < this.#o.retries) {
        const after = Number(res.headers.get("retry-after"));
        const wait = Number.isFinite(after) && after > 0
          ? Math.min(after * 1000, 30_000)
          : this.#o.backoffMs * 2 ** retry;
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      throw new Error(`chat completions answered ${res.status}: ${text.slice(0, 200)}`);
    }
  }
}
