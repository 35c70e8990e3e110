import assert from "node:assert/strict";
import { DocumentStats, LocalWriter, sentences, terms } from "./writer.ts";

const photosynthesis = [
  "Photosynthesis converts light energy into chemical energy stored in glucose.",
  "Chlorophyll absorbs mostly blue and red light and reflects green light.",
  "The light reactions take place in the thylakoid membranes of the chloroplast.",
  "The Calvin cycle fixes carbon dioxide into sugars in the stroma.",
  "Oxygen is released as a by-product when water molecules are split.",
  "Plants, algae and cyanobacteria all perform photosynthesis.",
];
const respiration = [
  "Cellular respiration releases energy from glucose in the mitochondria.",
  "Glycolysis splits glucose into two molecules of pyruvate in the cytoplasm.",
  "The electron transport chain produces most of the cell's adenosine triphosphate.",
  "Fermentation regenerates NAD+ when oxygen is scarce.",
];

Deno.test("local writer: extractive summary, key points and cited cloze questions", async () => {
  const doc = new DocumentStats();
  doc.add(photosynthesis.join(" "));
  doc.add(respiration.join(" "));
  const lesson = {
    title: "Photosynthesis",
    passages: [
      { text: photosynthesis.slice(0, 3).join(" "), page: 4 },
      { text: photosynthesis.slice(3).join(" "), page: 5 },
    ],
  };
  const writer = new LocalWriter();
  const a = await writer.lesson(lesson, doc);
  const b = await writer.lesson(lesson, doc);
  assert.deepEqual(a, b, "deterministic");
  for (const s of sentences(a.summary)) assert.ok(photosynthesis.includes(s), `extractive: ${s}`);
  assert.ok(a.keyPoints.length >= 3 && a.keyPoints.length <= 7);
  assert.ok(a.keyPoints.every((k) => photosynthesis.includes(k)));
  assert.ok(a.quiz.length >= 3, `${a.quiz.length} questions`);
  for (const q of a.quiz) {
    assert.equal(q.choices.length, 4);
    assert.equal(new Set(q.choices).size, 4, "distinct choices");
    const answer = q.choices[q.answer]!;
    const source = photosynthesis.find((s) => q.question.includes(s.replace(answer, "_____")));
    assert.ok(source, `the question blanks the answer in a sentence: ${q.question}`);
    assert.equal(q.page, photosynthesis.indexOf(source!) < 3 ? 4 : 5, "cites the sentence's page");
    assert.match(q.explanation, new RegExp(`Page ${q.page}`));
  }
});

Deno.test("sentences and terms handle non-Latin text", () => {
  assert.deepEqual(sentences("Фотосинтез идёт в хлоропластах. Это важно! Да?"), [
    "Фотосинтез идёт в хлоропластах.",
    "Это важно!",
    "Да?",
  ]);
  assert.deepEqual(terms("Хлорофилл поглощает свет."), ["хлорофилл", "поглощает", "свет"]);
});

Deno.test("sentences are not split at initials or abbreviations", () => {
  assert.deepEqual(
    sentences(
      "Richard A. Becker, John M. Chambers and Allan R. Wilks (1988), The New S Language. " +
        "Chapman & Hall, New York. Plot it, e.g. with plot(), as in Fig. 3 of Smith et al. " +
        "The end, i.e. Done. Set x. Then y.",
    ),
    [
      "Richard A. Becker, John M. Chambers and Allan R. Wilks (1988), The New S Language.",
      "Chapman & Hall, New York.",
      "Plot it, e.g. with plot(), as in Fig. 3 of Smith et al. The end, i.e. Done.",
      "Set x.",
      "Then y.",
    ],
  );
});
