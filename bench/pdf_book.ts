/**
 * The generated book of the course benchmarks (bench/courses_scale.ts, bench/edge_memory.ts):
 * `pages` pages of sentences (`seed` makes each book's text its own), a chapter every 30 pages
 * and a section every 5, with the matching outline.
 */
import { makePdf, sentences } from "../tests/fixtures/pdfs.ts";

/** The book's PDF bytes. */
export async function book(pages: number, seed: number): Promise<Uint8Array> {
  const spec = [];
  const outline = [];
  for (let p = 0; p < pages; p++) {
    if (p % 30 === 0) {
      spec.push({ heading: `Chapter ${p / 30 + 1}`, paragraphs: [sentences(`b${seed}p${p}`, 16)] });
      outline.push({
        title: `Chapter ${p / 30 + 1}`,
        page: p + 1,
        children: [] as { title: string; page: number }[],
      });
    } else if (p % 5 === 0) {
      spec.push({ subheading: `Section ${p}`, paragraphs: [sentences(`b${seed}p${p}`, 18)] });
      outline.at(-1)!.children.push({ title: `Section ${p}`, page: p + 1 });
    } else {
      spec.push({ paragraphs: [sentences(`b${seed}p${p}`, 20)] });
    }
  }
  return await makePdf(spec, { outline });
}
