/**
 * The outline read from a PDF's objects equals pdf.js's, item for item, for every way a
 * bookmark can name its page: an explicit destination (page reference or page number), a
 * GoTo action, a named destination in the `/Names` tree (sorted, or not: then every name is
 * searched) or in the `/Dests` dictionary, a destination dictionary; bookmarks that lead
 * elsewhere (URI) or nowhere are left out, as are empty titles; titles in UTF-16, UTF-8 and
 * PDFDocEncoding decode alike; a loop in the `/Next` chain ends. Each entry's `top` (points
 * from the page top) comes from its `/XYZ`, `/FitH`, `/FitBH` or `/FitR` destination, against
 * the page's crop box; null when the destination has none.
 */
import assert from "node:assert/strict";
import { PDFDict, PDFDocument, PDFHexString, PDFName, PDFNull, PDFRef, PDFString } from "pdf-lib";
import { makePdf } from "../../tests/fixtures/pdfs.ts";
import { PdfDocument } from "./pdf.ts";
import { readOutline } from "./pdf_outline.ts";
import { FastText } from "./pdf_text.ts";

type Dest = (pages: PDFRef[], doc: PDFDocument) => [string, unknown];

/** A 6-page PDF whose outline items each get their destination from `dest`. */
async function withOutline(
  items: { title: PDFString | PDFHexString; dest: Dest; children?: number }[],
  catalog: (doc: PDFDocument, pages: PDFRef[]) => void = () => {},
): Promise<Uint8Array> {
  const doc = await PDFDocument.load(
    await makePdf(Array.from({ length: 6 }, (_, i) => ({ paragraphs: [`Page ${i + 1}`] }))),
  );
  const ctx = doc.context;
  const pages = doc.getPages().map((p) => p.ref);
  const refs = items.map(() => ctx.nextRef());
  const root = ctx.nextRef();
  items.forEach((item, i) => {
    const dict = ctx.obj({}) as PDFDict;
    dict.set(PDFName.of("Title"), item.title);
    dict.set(PDFName.of("Parent"), root);
    const [key, value] = item.dest(pages, doc);
    if (key) dict.set(PDFName.of(key), ctx.obj(value as never));
    if (i < items.length - 1 && !items[i + 1]!.children) {
      dict.set(PDFName.of("Next"), refs[i + 1]!);
    }
    ctx.assign(refs[i]!, dict);
  });
  // Items with `children: k` hang under item k (as its /First, chained by /Next).
  const kids = new Map<number, number[]>();
  items.forEach((item, i) => {
    if (item.children !== undefined) {
      kids.set(item.children, [...(kids.get(item.children) ?? []), i]);
    }
  });
  for (const [parent, list] of kids) {
    (ctx.lookup(refs[parent]!) as PDFDict).set(PDFName.of("First"), refs[list[0]!]!);
    list.forEach((k, j) => {
      const dict = ctx.lookup(refs[k]!) as PDFDict;
      dict.delete(PDFName.of("Next"));
      if (j < list.length - 1) dict.set(PDFName.of("Next"), refs[list[j + 1]!]!);
    });
  }
  const outlines = ctx.obj({ Type: "Outlines" }) as PDFDict;
  outlines.set(PDFName.of("First"), refs[0]!);
  ctx.assign(root, outlines);
  doc.catalog.set(PDFName.of("Outlines"), root);
  catalog(doc, pages);
  return await doc.save({ useObjectStreams: false });
}

const xyz = (ref: PDFRef) => [ref, PDFName.of("XYZ"), PDFNull, PDFNull, PDFNull];
const explicit = (page: number): Dest => (pages) => ["Dest", xyz(pages[page - 1]!)];

async function bothWays(bytes: Uint8Array) {
  const slow = await PdfDocument.open(bytes, { fastText: false });
  try {
    const expected = await slow.outlineByPdfJs();
    const got = readOutline(FastText.open(bytes).file);
    assert.deepEqual(got, expected);
    return got;
  } finally {
    await slow.close();
  }
}

Deno.test("outline: every kind of destination, as pdf.js reads it", async () => {
  const t = (s: string) => PDFString.of(s);
  const bytes = await withOutline([
    { title: t("Explicit"), dest: explicit(2) },
    { title: t("GoTo"), dest: (p) => ["A", { S: "GoTo", D: xyz(p[2]!) }] },
    { title: t("By number"), dest: () => ["Dest", [4, PDFName.of("Fit")]] },
    { title: t("Named in tree"), dest: () => ["Dest", PDFString.of("chap-b")] },
    { title: t("Named as a name"), dest: () => ["Dest", PDFName.of("old")] },
    { title: t("Dict dest"), dest: () => ["Dest", PDFString.of("in-dict")] },
    { title: t("Web"), dest: () => ["A", { S: "URI", URI: PDFString.of("https://x.test") }] },
    { title: t("Nowhere"), dest: () => ["", null] },
    { title: t("Bad dest"), dest: (p) => ["Dest", [p[0]!, PDFName.of("Nope")]] },
    { title: t("   "), dest: explicit(1) },
    { title: t("Child one"), dest: explicit(5), children: 0 },
    { title: t("Child two"), dest: explicit(6), children: 0 },
    { title: t("Grandchild"), dest: explicit(3), children: 10 },
  ], (doc, pages) => {
    const ctx = doc.context;
    // A name tree with two leaves under /Kids, sorted, and a /Dests dictionary.
    const leaf = (names: [string, unknown][]) =>
      ctx.register(ctx.obj({
        Limits: [PDFString.of(names[0]![0]), PDFString.of(names.at(-1)![0])],
        Names: names.flatMap(([k, v]) => [PDFString.of(k), v]) as never,
      }));
    const tree = ctx.obj({
      Kids: [
        leaf([["chap-a", xyz(pages[0]!)], ["chap-b", ctx.obj({ D: xyz(pages[3]!) })]]),
        leaf([["chap-c", xyz(pages[5]!)]]),
      ],
    });
    doc.catalog.set(PDFName.of("Names"), ctx.obj({ Dests: ctx.register(tree as PDFDict) }));
    doc.catalog.set(
      PDFName.of("Dests"),
      ctx.obj({ old: xyz(pages[1]!), "in-dict": xyz(pages[4]!) }),
    );
  });
  assert.deepEqual(await bothWays(bytes), [
    { title: "Explicit", page: 2, level: 1, top: null },
    { title: "Child one", page: 5, level: 2, top: null },
    { title: "Grandchild", page: 3, level: 3, top: null },
    { title: "Child two", page: 6, level: 2, top: null },
    { title: "GoTo", page: 3, level: 1, top: null },
    { title: "By number", page: 5, level: 1, top: null },
    { title: "Named in tree", page: 4, level: 1, top: null },
    { title: "Named as a name", page: 2, level: 1, top: null },
    { title: "Dict dest", page: 5, level: 1, top: null },
  ]);
});

Deno.test("outline: an unsorted name tree is searched whole", async () => {
  const bytes = await withOutline([
    { title: PDFString.of("Late"), dest: () => ["Dest", PDFString.of("b")] },
  ], (doc, pages) => {
    const ctx = doc.context;
    const names = ctx.obj({
      Names: [PDFString.of("z"), xyz(pages[0]!), PDFString.of("b"), xyz(pages[2]!)] as never,
    });
    doc.catalog.set(PDFName.of("Names"), ctx.obj({ Dests: names }));
  });
  assert.deepEqual(await bothWays(bytes), [{ title: "Late", page: 3, level: 1, top: null }]);
});

Deno.test("outline: titles in UTF-16, UTF-8 and PDFDocEncoding", async () => {
  const utf8 = "\xef\xbb\xbf" + String.fromCharCode(...new TextEncoder().encode("Ünïcode ✓"));
  const bytes = await withOutline([
    { title: PDFHexString.fromText("Größe 漢字 🙂"), dest: explicit(1) },
    { title: PDFString.of(utf8), dest: explicit(2) },
    // 0x80 = bullet, 0x8d = left double quote, 0x18 = breve in PDFDocEncoding; 0xe9 = é.
    { title: PDFString.of("\x80 caf\xe9 \x8d\x18"), dest: explicit(3) },
    // A language mark (ESC ... ESC) inside UTF-16 text is dropped.
    { title: PDFHexString.fromText("\x1bfr\x1bLéa"), dest: explicit(4) },
  ]);
  assert.deepEqual((await bothWays(bytes)).map((e) => e.title), [
    "Größe 漢字 🙂",
    "Ünïcode ✓",
    "\u2022 café \u201c\u02d8",
    "Léa",
  ]);
});

Deno.test("outline: none, and a loop in the chain", async () => {
  assert.deepEqual(await bothWays(await makePdf([{ paragraphs: ["no outline"] }])), []);
  const bytes = await withOutline([
    { title: PDFString.of("One"), dest: explicit(1) },
    { title: PDFString.of("Two"), dest: explicit(2) },
  ], (doc) => {
    // Two's /Next points back at One.
    const outlines = doc.context.lookup(doc.catalog.get(PDFName.of("Outlines"))) as PDFDict;
    const one = outlines.get(PDFName.of("First")) as PDFRef;
    const two = (doc.context.lookup(one) as PDFDict).get(PDFName.of("Next")) as PDFRef;
    (doc.context.lookup(two) as PDFDict).set(PDFName.of("Next"), one);
  });
  assert.deepEqual(await bothWays(bytes), [
    { title: "One", page: 1, level: 1, top: null },
    { title: "Two", page: 2, level: 1, top: null },
  ]);
});

Deno.test("outline: destination tops, from the page's crop box", async () => {
  const at = (page: number, kind: string, ...args: (number | null)[]): Dest => (pages) => [
    "Dest",
    [pages[page - 1]!, PDFName.of(kind), ...args.map((a) => a === null ? PDFNull : a)],
  ];
  const bytes = await withOutline([
    { title: PDFString.of("XYZ"), dest: at(1, "XYZ", 0, 700, null) },
    { title: PDFString.of("XYZ null top"), dest: at(1, "XYZ", 0, null, 0) },
    { title: PDFString.of("FitH"), dest: at(2, "FitH", 600) },
    { title: PDFString.of("FitBH"), dest: at(2, "FitBH", 250.25) },
    { title: PDFString.of("FitR"), dest: at(3, "FitR", 10, 100, 300, 500) },
    { title: PDFString.of("Fit"), dest: at(3, "Fit") },
    { title: PDFString.of("Above the page"), dest: at(4, "XYZ", 0, 900, 0) },
    { title: PDFString.of("Cropped"), dest: at(5, "XYZ", 0, 650, 0) },
  ], (doc) => {
    // Page 5 shows only up to y = 700 (its crop box): tops count from there.
    doc.getPage(4).setCropBox(0, 0, 612, 700);
  });
  assert.deepEqual((await bothWays(bytes)).map((e) => [e.title, e.top]), [
    ["XYZ", 92],
    ["XYZ null top", null],
    ["FitH", 192],
    ["FitBH", 541.8],
    ["FitR", 292],
    ["Fit", null],
    ["Above the page", 0],
    ["Cropped", 50],
  ]);
});
