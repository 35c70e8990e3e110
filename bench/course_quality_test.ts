import assert from "node:assert/strict";
import {
  bookWords,
  duplicates,
  furniture,
  furnitureIn,
  onPage,
  shingles,
} from "./course_quality.ts";

/** Layout pages of a book: a running head with the page number, prose, a page number foot. */
function layoutPages(): string[] {
  return Array.from({ length: 6 }, (_, i) => {
    const chapter = i < 3 ? "Chapter 1: Vectors and arrays" : "Chapter 2: Lists and data frames";
    return [
      `${chapter}                                        ${i + 5}`,
      "",
      ...Array.from(
        { length: 8 },
        (_, j) => `Prose line ${"abcdefgh"[j]} of page ${"abcdef"[i]} on vectors and lists.`,
      ),
      "",
      `                         ${i + 5}`,
    ].join("\n");
  });
}

Deno.test("course_quality: running heads and page numbers are found from the layout alone", () => {
  const f = furniture(layoutPages());
  assert.deepEqual(f.heads.sort(), [
    "Chapter #: Lists and data frames",
    "Chapter #: Vectors and arrays",
  ]);
  assert.equal(f.numbers.get(1), "5");
  assert.equal(f.numbers.get(6), "10");
});

Deno.test("course_quality: furniture is counted where it lands in lesson text", () => {
  const f = furniture(layoutPages());
  assert.equal(
    furnitureIn("Chapter 2: Lists and data frames 9 A list is an ordered collection.", f, [5, 5]),
    1,
  );
  // The page number of a page of the lesson, where a page's first or last line lands.
  assert.equal(furnitureIn("Lists hold anything. 9 A list is ordered.", f, [5, 5]), 1);
  assert.equal(furnitureIn("A list is ordered 9", f, [5, 5]), 1);
  // A number inside a sentence, or of a page outside the lesson, is no furniture.
  assert.equal(furnitureIn("A vector of 9 numbers.", f, [5, 5]), 0);
  assert.equal(furnitureIn("Lists hold anything. 9 A list is ordered.", f, [1, 2]), 0);
});

Deno.test("course_quality: a footnote's mark is no page number; a head matches in its case", () => {
  const pages = layoutPages();
  // A footnote at the foot of page 3, which has no page number: its mark alone on a line.
  pages[2] = pages[2]!.replace(/\n\s+7$/, "\n  4\n      A footnote about vectors.");
  pages.push(...["Index", "Index"].map((h, i) => `${h}\n\nvector, 3\nlist, 5\n\n  ${i + 11}`));
  pages.push("Index\n\narray, 2\n\n  13");
  const f = furniture(pages);
  assert.equal(f.numbers.get(3), undefined, "the mark is not the page's number");
  assert.equal(f.numbers.get(4), "8");
  assert.ok(f.heads.includes("Index"));
  assert.equal(furnitureIn("4 A footnote about vectors.", f, [3, 3]), 0);
  assert.equal(furnitureIn("Look the term up in the index of the book.", f, [7, 9]), 0);
  assert.equal(furnitureIn("Index vector, 3 list, 5", f, [7, 9]), 1);
});

Deno.test("course_quality: duplicates are equal after whitespace or near-equal by shingles", () => {
  const a = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen " +
    "fifteen sixteen seventeen eighteen nineteen twenty twentyone twentytwo twentythree";
  assert.equal(duplicates([a, a.replace(/ /g, "  \n")]), 1);
  assert.equal(duplicates([a, a.replace("twentythree", "twentyfour")]), 1, "Jaccard 0.95");
  assert.equal(duplicates([a, a.split(" ").reverse().join(" ")]), 0);
  assert.equal(shingles("a b").size, 1);
});

Deno.test("course_quality: an answer is on a page as a whole word, across a hyphenated break", () => {
  assert.ok(onPage("complicated", "in various com-\nplicated ways"));
  assert.ok(onPage("ﬁle", "the file name"));
  assert.ok(!onPage("tab", "a table"));
});

Deno.test("course_quality: a book's words undo line-end hyphenation", () => {
  const words = bookWords(["in various com-\nplicated ways, a by-product", "x86 and ﬁles"]);
  assert.ok(words.has("complicated") && words.has("by-product") && words.has("files"));
  assert.ok(!words.has("plicated") && !words.has("com"));
});
