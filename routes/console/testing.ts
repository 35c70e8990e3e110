/**
 * What the console's tests share: a cookie jar over `app.request`, and a world running the
 * course workload with one built course per tenant (known words on known pages), and an app
 * served on a loopback port with a headless Chromium to drive it.
 */
import assert from "node:assert/strict";
import { type Browser, chromium } from "playwright-core";
import { courseActors } from "../../actors/courses/pipeline.ts";
import { FsBlobStore } from "../../db/blobs/fs.ts";
import type { BlobStore } from "../../db/blobs/port.ts";
import { PostgresBlobStore } from "../../db/blobs/postgres.ts";
import { API_DRIVERS, type ApiWorld, openApiWorld } from "../../tests/api_world.ts";
import { makePdf, sentences } from "../../tests/fixtures/pdfs.ts";
import { COURSE_ENDS, settledBody } from "../../tests/harness.ts";
import { localCourseAdapters } from "../../tests/local_adapters.ts";

/** `app` served on a free loopback port, and Debian's Chromium; `close` stops both. */
export async function servedInChromium(
  app: { fetch: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response> },
): Promise<{ base: string; browser: Browser; close: () => Promise<void> }> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => app.fetch(req, info),
  );
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" })
    .catch(async (err) => {
      await server.shutdown();
      throw err;
    });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    browser,
    async close() {
      await browser.close();
      await server.shutdown();
    },
  };
}

export type App = { request: (path: string, init: RequestInit) => Response | Promise<Response> };

/** A browser's cookie jar over `app.request`, following no redirects. */
export function consoleClient(app: App) {
  const jar = new Map<string, string>();
  async function request(path: string, init: RequestInit = {}) {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await app.request(path, { ...init, headers, redirect: "manual" });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [k, v] = pair!.split("=");
      if (/Max-Age=0/i.test(line) || v === "") jar.delete(k!);
      else jar.set(k!, v!);
    }
    return res;
  }
  const tokenOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? "";
  async function post(path: string, form: Record<string, string>) {
    return await request(path, { method: "POST", body: new URLSearchParams(form) });
  }
  async function login(key: string) {
    const token = tokenOf(await (await request("/console/login")).text());
    return await post("/console/login", { _csrf: token, key });
  }
  async function csrf() {
    return tokenOf(await (await request("/console/jobs")).text());
  }
  return { request, post, login, csrf, jar };
}

/** A tenant of a {@linkcode CourseWorld}, with its API key and its built course. */
export interface CourseTenant {
  id: string;
  key: string;
  courseId: string;
}

export interface CourseWorld extends ApiWorld {
  /** "Biology 101": `biology.pdf`, the words "zebrafish quokka" on page 2 (section Membranes). */
  acme: CourseTenant;
  /** "Secret notes": `secret.pdf`, the words "zebrafish quokka" on page 1. */
  other: CourseTenant;
}

/** A PDF of known sections and pages; `rare` is written on page `rarePage`'s first line. */
function book(rare: string, rarePage: number) {
  const pages = [
    { heading: "Cells", paragraphs: [sentences("cell", 8)] },
    { subheading: "Membranes", paragraphs: [sentences("membrane", 6)] },
    { subheading: "Organelles", paragraphs: [sentences("organelle", 8)] },
  ];
  pages[rarePage - 1]!.paragraphs.unshift(`The ${rare} is a rare term found on this page.`);
  return makePdf(pages, {
    outline: [{
      title: "Cells",
      page: 1,
      children: [{ title: "Membranes", page: 2 }, { title: "Organelles", page: 3 }],
    }],
  });
}

/** Uploads `pdf` as a course through the API and waits until it is built. */
async function buildCourse(
  world: ApiWorld,
  key: string,
  title: string,
  fileName: string,
  pdf: Uint8Array,
): Promise<string> {
  const form = new FormData();
  form.append("title", title);
  form.append("files", new File([new Uint8Array(pdf)], fileName, { type: "application/pdf" }));
  const req = new Request("http://x/", { method: "POST", body: form });
  const res = await world.app.request("/api/v1/courses", {
    method: "POST",
    body: await req.arrayBuffer(),
    headers: { "content-type": req.headers.get("content-type")!, "x-api-key": key },
  });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  const course = await settledBody(
    async () => {
      const got = await world.app.request(`/api/v1/courses/${body.courseId}`, {
        headers: { "x-api-key": key },
      });
      return { status: got.status, body: await got.json() };
    },
    COURSE_ENDS,
    { what: `course ${title}` },
  );
  assert.equal(course.status, "ready", JSON.stringify(course));
  return body.courseId;
}

/** A world running the course workload (the local adapters), with two tenants' courses built. */
export async function openCourseWorld(): Promise<CourseWorld> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-console-courses-" });
  let blobs!: BlobStore;
  let adapters!: ReturnType<typeof localCourseAdapters>;
  const world = await openApiWorld((tdb) => {
    blobs = API_DRIVERS === "production" ? new PostgresBlobStore(tdb.db) : new FsBlobStore(dir);
    adapters = localCourseAdapters(tdb.db);
    return courseActors({ ...adapters, db: tdb.db, blobs });
  }, (tdb) => ({
    perIpPerMinute: 1_000_000,
    perKeyPerMinute: 1_000_000,
    courses: {
      db: tdb.db,
      blobs,
      vectors: adapters.vectors,
      embedder: adapters.embedder,
      maxFileBytes: 2_000_000,
    },
  }));
  const release = async () => {
    adapters.extractor.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const tenant = async (name: string, title: string, file: string, page: number) => {
      const id = (await world.tenants.createTenant(name)).id;
      const key = (await world.tenants.createKey(id)).key;
      const courseId = await buildCourse(
        world,
        key,
        title,
        file,
        await book("zebrafish quokka", page),
      );
      return { id, key, courseId };
    };
    const acme = await tenant("acme", "Biology 101", "biology.pdf", 2);
    const other = await tenant("other", "Secret notes", "secret.pdf", 1);
    const close = world.close;
    return {
      ...world,
      acme,
      other,
      async close() {
        await close();
        await release();
      },
    };
  } catch (err) {
    await world.close();
    await release();
    throw err;
  }
}
