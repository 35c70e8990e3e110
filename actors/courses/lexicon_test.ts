import assert from "node:assert/strict";
import { lexemeVector, queryTokens, tokens, tsqueryOf, variants } from "./lexicon.ts";

Deno.test("tokens() keeps short identifiers and code punctuation, and their pieces", () => {
  assert.deepEqual(tokens("Fit lm(y ~ x)."), ["fit", "lm", "y", "x"]);
  assert.deepEqual(tokens("t.test"), ["t.test", "t", "test"]);
  assert.deepEqual(tokens("C++ and ls -l"), ["c++", "c", "and", "ls", "-l", "l"]);
  assert.deepEqual(tokens("x %in% y"), ["x", "%in%", "in", "y"]);
  assert.deepEqual(tokens("Saved in .RData"), ["saved", "save", "sav", "in", ".rdata", "rdata"]);
});

Deno.test("variants() folds plurals and past and continuous forms", () => {
  assert.deepEqual(variants("membranes"), ["membrane"]);
  assert.deepEqual(variants("classes"), ["class"]);
  assert.deepEqual(variants("bodies"), ["body"]);
  assert.deepEqual(variants("changed"), ["change", "chang"]);
  assert.deepEqual(variants("analysis"), []);
  assert.deepEqual(variants("lm"), []);
});

Deno.test("queryTokens() drops stop words unless nothing else is left", () => {
  assert.deepEqual(queryTokens("What is the capital of France?"), ["capital", "france"]);
  assert.deepEqual(queryTokens("if"), ["if"]);
});

Deno.test("lexemeVector() and tsqueryOf() quote lexemes PostgreSQL would read otherwise", () => {
  assert.equal(lexemeVector("it's a b a"), "'it''s':1 'it':2 's':3 'a':4,6 'b':5");
  assert.equal(tsqueryOf(["it's", "c++", "a\\b"]), "'it''s' | 'c++' | 'a\\\\b'");
});
