/**
 * No two lessons share a summary or a question: exact repeats (after whitespace) and near
 * ones (word 3-shingle Jaccard ≥ 0.9) are found, with the prefix-filtered index agreeing with
 * comparing every pair; repeated questions are dropped, repeated summaries written again from
 * the lesson's own sentences, and a lesson whose text is all another's still gets its own.
 */
import assert from "node:assert/strict";
import { sentences as filler } from "../../tests/fixtures/pdfs.ts";
import {
  type DistinctInput,
  distinctLessons,
  jaccard,
  NEAR,
  sameText,
  SeenTexts,
  shingles,
} from "./distinct.ts";
import type { QuizQuestion } from "./writer/port.ts";

const question = (text: string, page = 1): QuizQuestion => ({
  question: text,
  choices: ["a", "b", "c", "d"],
  answer: 0,
  explanation: "",
  page,
});

/** Fails unless no two lessons share a summary or a question (every pair compared). */
function assertDistinct(lessons: DistinctInput[]) {
  const summaries = lessons.map((l) => l.summary);
  const questions = lessons.flatMap((l) => l.quiz.map((q) => q.question));
  for (const list of [summaries, questions]) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        assert.ok(!sameText(list[i]!, list[j]!), `"${list[i]}" and "${list[j]}"`);
      }
    }
  }
}

Deno.test("distinct: same text exactly, after whitespace, or nearly", () => {
  const long = filler("alpha", 6);
  assert.ok(sameText("A  b\nc.", " A b c. "));
  // One word of ~80 changed: most shingles shared.
  const near = long.replace("number 4", "number four");
  assert.ok(jaccard(shingles(long), shingles(near)) >= NEAR);
  assert.ok(sameText(long, near));
  assert.ok(!sameText(filler("alpha", 2), filler("beta", 2)));
  assert.ok(!sameText("Fill in the blank: x", "Fill in the blank: y"));
});

Deno.test("distinct: the prefix-filtered index finds what comparing every pair finds", () => {
  const base = Array.from({ length: 40 }, (_, i) => filler(`m${i % 7}`, 3 + (i % 5)));
  // Variants: some near (one word changed in a long text), some far (half the words).
  const texts = base.flatMap((t, i) => [
    t,
    t.replace("number 2", i % 2 ? "number two" : "number 2"),
    t.split(" ").slice(0, Math.ceil(t.split(" ").length / 2)).join(" "),
  ]);
  const seen = new SeenTexts();
  const kept: string[] = [];
  for (const t of texts) {
    const expected = kept.some((k) => sameText(k, t));
    assert.equal(seen.has(t), expected, t);
    if (!expected) {
      seen.add(t);
      kept.push(t);
    }
  }
  assert.ok(kept.length > 20 && kept.length < texts.length);
});

Deno.test("distinct: repeated questions dropped, repeated summaries written again", () => {
  const a = filler("alpha", 6);
  const b = filler("beta", 6);
  const lessons: DistinctInput[] = [
    {
      title: "One",
      module: "M",
      summary: a,
      quiz: [question("Fill in the blank: the _____ of alpha."), question("Q one")],
      passages: [{ text: a }],
    },
    {
      // The writer gave the same summary and a question again (whitespace aside), plus one of
      // its own and a near copy of the first.
      title: "Two",
      module: "M",
      summary: ` ${a}`,
      quiz: [
        question("Fill in the blank:  the _____ of   alpha."),
        question("Q two"),
        question(`Fill in the blank: ${a.replace("number 3", "number three")}`),
        question(`Fill in the blank: ${a}`),
      ],
      passages: [{ text: `${a} ${b}` }],
    },
    {
      // All its text is lesson one's: its summary is made of its module and title.
      title: "Three",
      module: "M",
      summary: a,
      quiz: [question("Q one")],
      passages: [{ text: a }],
    },
  ];
  const fixed = distinctLessons(lessons);
  assertDistinct(lessons);
  assert.deepEqual(fixed, { summaries: 2, questions: 3 });
  assert.deepEqual(lessons.map((l) => l.quiz.map((q) => q.question)), [
    ["Fill in the blank: the _____ of alpha.", "Q one"],
    ["Q two", `Fill in the blank: ${a.replace("number 3", "number three")}`],
    [],
  ]);
  // Lesson two's summary: its own sentences that no earlier summary has (beta's).
  assert.match(lessons[1]!.summary, /^The data of beta number 1 .*beta number 3/);
  assert.doesNotMatch(lessons[1]!.summary, /alpha/);
  assert.equal(lessons[2]!.summary, "M: Three.");
});

Deno.test("distinct: lessons titled alike with the same text each get a summary", () => {
  const text = filler("same", 3);
  const lessons: DistinctInput[] = Array.from({ length: 4 }, () => ({
    title: "Exercises",
    module: "Chapter",
    summary: text,
    quiz: [],
    passages: [{ text }],
  }));
  distinctLessons(lessons);
  assertDistinct(lessons);
  const blank: DistinctInput = {
    title: "Figures",
    module: "Chapter",
    summary: " ",
    quiz: [],
    passages: [],
  };
  distinctLessons([blank]);
  assert.equal(blank.summary, "Chapter: Figures.", "an empty summary gets one too");
  assert.deepEqual(lessons.map((l) => l.summary), [
    text,
    "Chapter: Exercises.",
    "Lesson 1.",
    "Lesson 2.",
  ]);
});
