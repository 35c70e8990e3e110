/**
 * The console's data pages: datasets with their column profiles, courses with their modules,
 * lessons and a search form, and daily usage.
 */
import type { Context, Hono } from "hono";
import type { Runtime } from "@troupe/runtime";
import { searchCourse, type SearchResult } from "../../actors/courses/answer.ts";
import { queryTokens } from "../../actors/courses/lexicon.ts";
import { COURSE_SEARCH, type CourseRoutesOptions, courseSearchQuery } from "../courses.ts";
import { getDataset, listDatasets, rowsAfter } from "../../actors/datasets/store.ts";
import { dailyUsage, type DayFigures } from "../../actors/usage/aggregates.ts";
import type { Principal } from "../../db/tenants.ts";
import { type CourseView, getCourseView } from "../../actors/courses/store.ts";
import { type Frame, Json, Layout, page, when } from "./layout.tsx";

interface Histogram {
  edges: number[];
  counts: number[];
}

interface Profile {
  count?: number;
  nulls?: number;
  min?: unknown;
  max?: unknown;
  mean?: number | null;
  distinct?: number;
  histogram?: Histogram | null;
}

const fmt = (n: number) =>
  Math.abs(n) >= 1e6 || (n !== 0 && Math.abs(n) < 1e-3)
    ? n.toExponential(2)
    : String(+n.toFixed(3));

/** Bars as inline SVG: no script, no style attribute (the page's CSP allows neither inline). */
export function Bars(
  { values, labels, title }: { values: number[]; labels: [string, string]; title: string },
) {
  const w = 320, h = 80, top = Math.max(1, ...values);
  const bw = w / Math.max(1, values.length);
  return (
    <svg
      class="bars"
      viewBox={`0 0 ${w} ${h + 14}`}
      width={w}
      height={h + 14}
      role="img"
      aria-label={title}
    >
      <title>{title}</title>
      {values.map((v, i) => {
        const bh = Math.round((v / top) * h);
        return (
          <rect key={i} x={i * bw + 1} y={h - bh} width={Math.max(1, bw - 2)} height={bh}>
            <title>{String(v)}</title>
          </rect>
        );
      })}
      <text x="0" y={h + 12}>{labels[0]}</text>
      <text x={w} y={h + 12} text-anchor="end">{labels[1]}</text>
    </svg>
  );
}

function DatasetsPage(p: Frame & { items: Awaited<ReturnType<typeof listDatasets>>["items"] }) {
  return (
    <Layout {...p}>
      <table id="datasets">
        <thead>
          <tr>
            <th>Dataset</th>
            <th>Status</th>
            <th>Rows</th>
            <th>Columns</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {p.items.map((d) => (
            <tr key={d.id} data-dataset={d.id}>
              <td>
                <a href={`/console/datasets/${d.id}`}>{d.name}</a>
              </td>
              <td>{d.status}</td>
              <td>{d.rowCount ?? "—"}</td>
              <td>{d.columns.length}</td>
              <td class="small">{when(d.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.items.length === 0 && <p class="muted">No datasets.</p>}
    </Layout>
  );
}

const ROWS_PAGE = 50;

function RowsPage(
  p: Frame & {
    dataset: Awaited<ReturnType<typeof getDataset>>;
    rows: Record<string, unknown>[];
    next: number | null;
  },
) {
  const d = p.dataset;
  return (
    <Layout {...p}>
      <p>
        <a href={`/console/datasets/${d.id}`}>← Profile</a> · {d.rowCount ?? "?"} rows
      </p>
      <table id="rows">
        <thead>
          <tr>
            <th>#</th>
            {d.columns.map((col) => <th key={col.key}>{col.name}</th>)}
          </tr>
        </thead>
        <tbody>
          {p.rows.map((r) => (
            <tr data-row={String(r._row)}>
              <td class="muted small">{String(r._row)}</td>
              {d.columns.map((col) => (
                <td key={col.key}>{r[col.key] == null ? "—" : String(r[col.key])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {p.rows.length === 0 && <p class="muted">No rows.</p>}
      {p.next !== null && <a href={`/console/datasets/${d.id}/rows?after=${p.next}`}>Next →</a>}
    </Layout>
  );
}

function DatasetPage(p: Frame & { dataset: Awaited<ReturnType<typeof getDataset>> }) {
  const d = p.dataset;
  return (
    <Layout {...p}>
      <p>
        {d.status} · {d.rowCount ?? "?"} rows · {d.columns.length} columns ·{" "}
        <a href={`/console/datasets/${d.id}/rows`} id="show-rows">Rows</a>
      </p>
      <table id="profile">
        <thead>
          <tr>
            <th>Column</th>
            <th>Type</th>
            <th>Count / nulls</th>
            <th>Min · mean · max</th>
            <th>Distinct</th>
            <th>Histogram</th>
          </tr>
        </thead>
        <tbody>
          {d.columns.map((col) => {
            const pr = (col.profile ?? {}) as Profile;
            const h = pr.histogram;
            return (
              <tr key={col.key} data-column={col.name}>
                <td>{col.name}</td>
                <td>{col.type}</td>
                <td>{pr.count ?? "—"} / {pr.nulls ?? "—"}</td>
                <td>
                  <Json value={pr.min ?? null} max={30} /> ·{" "}
                  {typeof pr.mean === "number" ? fmt(pr.mean) : "—"} ·{" "}
                  <Json value={pr.max ?? null} max={30} />
                </td>
                <td>{pr.distinct ?? "—"}</td>
                <td>
                  {h && h.counts.length > 0 && (
                    <Bars
                      values={h.counts}
                      labels={[fmt(h.edges[0] ?? 0), fmt(h.edges.at(-1) ?? 0)]}
                      title={`${col.name}: histogram of ${h.counts.length} bins`}
                    />
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </Layout>
  );
}

function UsagePage(p: Frame & { days: DayFigures[] }) {
  const recent = p.days.slice(-60);
  return (
    <Layout {...p}>
      {recent.length > 0 && (
        <Bars
          values={recent.map((d) => d.credits)}
          labels={[recent[0]!.day, recent.at(-1)!.day]}
          title="Credits per day"
        />
      )}
      <table id="usage">
        <thead>
          <tr>
            <th>Day</th>
            <th>Credits</th>
            <th>Messages</th>
            <th>Average credits</th>
          </tr>
        </thead>
        <tbody>
          {[...recent].reverse().map((d) => (
            <tr key={d.day} data-day={d.day}>
              <td>{d.day}</td>
              <td>{d.credits.toFixed(2)}</td>
              <td>{d.messages}</td>
              <td>{d.averageCredits.toFixed(2)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {recent.length === 0 && <p class="muted">No usage yet.</p>}
    </Layout>
  );
}

interface CourseRow {
  id: string;
  title: string;
  status: string;
  created_at: unknown;
}

function CoursesPage(p: Frame & { items: CourseRow[] }) {
  return (
    <Layout {...p}>
      <table id="courses">
        <thead>
          <tr>
            <th>Course</th>
            <th>Status</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {p.items.map((r) => (
            <tr key={r.id} data-course={r.id}>
              <td>
                <a href={`/console/courses/${r.id}`}>{r.title}</a>
              </td>
              <td>{r.status}</td>
              <td class="small">{when(new Date(String(r.created_at)).toISOString())}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.items.length === 0 && <p class="muted">No courses.</p>}
    </Layout>
  );
}

interface LessonView {
  title?: string;
  summary?: string;
  pages?: [number, number];
  fileName?: string;
  quiz?: unknown[];
}

/** What the course page's search form asked, and what it found or why it was refused. */
export type CourseSearch =
  | { q: string; k: number; results: SearchResult[] }
  | { q: string; k: string; error: string };

/** The part of a passage around the first of the query's words, at most `max` characters. */
export function snippet(text: string, query: string, max = 280): string {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= max) return flat;
  const lower = flat.toLowerCase();
  const at = Math.min(
    ...queryTokens(query).map((t) => lower.indexOf(t)).filter((i) => i >= 0),
    flat.length,
  );
  const from = at === flat.length ? 0 : Math.max(0, Math.min(at - 60, flat.length - max));
  const start = from === 0 ? 0 : flat.indexOf(" ", from) + 1 || from;
  const part = flat.slice(start, start + max);
  return `${start > 0 ? "…" : ""}${part}${start + max < flat.length ? "…" : ""}`;
}

const RESULT_CHOICES = [5, 10, 20, COURSE_SEARCH.maxResults];

function SearchForm({ courseId, search }: { courseId: string; search: CourseSearch | null }) {
  const k = String(search?.k ?? COURSE_SEARCH.defaultResults);
  return (
    <>
      <form method="get" action={`/console/courses/${courseId}`} class="filters" id="search">
        <label>
          Search the course{" "}
          <input
            type="search"
            name="q"
            value={search?.q ?? ""}
            maxlength={COURSE_SEARCH.maxQueryChars}
            placeholder="words, a phrase, an identifier"
            size={40}
            required
          />
        </label>
        <label>
          Results{" "}
          <select name="k">
            {RESULT_CHOICES.map((n) => (
              <option value={String(n)} selected={k === String(n)}>{n}</option>
            ))}
          </select>
        </label>
        <button type="submit">Search</button>
      </form>
      {search && "error" in search && (
        <p class="error" role="alert" id="search-error">{search.error}</p>
      )}
      {search && "results" in search && (
        search.results.length === 0
          ? <p class="muted" id="search-none">Nothing in this course matches “{search.q}”.</p>
          : (
            <table id="search-results">
              <thead>
                <tr>
                  <th>File</th>
                  <th>Page</th>
                  <th>Section</th>
                  <th>Passage</th>
                  <th>Score</th>
                </tr>
              </thead>
              <tbody>
                {search.results.map((r, i) => (
                  <tr data-result={i}>
                    <td data-field="file">{r.fileName}</td>
                    <td data-field="page">{r.page}</td>
                    <td data-field="section">{r.section}</td>
                    <td data-field="snippet" class="small">{snippet(r.text, search.q)}</td>
                    <td data-field="score">{r.score.toFixed(3)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
      )}
    </>
  );
}

function CoursePage(p: Frame & { course: CourseView; search: CourseSearch | null }) {
  const modules = p.course.modules as { title?: string; summary?: string; lessons?: unknown[] }[];
  return (
    <Layout {...p}>
      <p>
        {p.course.status} · {p.course.sources.length} files · {modules.length} modules
      </p>
      <SearchForm courseId={p.course.id} search={p.search} />
      {modules.map((m, i) => (
        <section key={i} class="module" data-module={i}>
          <h2>{m.title ?? `Module ${i + 1}`}</h2>
          {m.summary && <p class="muted">{m.summary}</p>}
          <ol>
            {((m.lessons ?? []) as LessonView[]).map((l, j) => (
              <li key={j} data-lesson={`${i}.${j}`}>
                <strong>{l.title}</strong>
                {l.pages && (
                  <span class="small muted">
                    {` · ${l.fileName} pp. ${l.pages[0]}–${l.pages[1]}`}
                  </span>
                )}
                {l.quiz && l.quiz.length > 0 && (
                  <span class="small muted">· {l.quiz.length} quiz questions</span>
                )}
                {l.summary && <div class="small">{l.summary}</div>}
              </li>
            ))}
          </ol>
        </section>
      ))}
    </Layout>
  );
}

/** What the course search needs: the vector store and the embedder the course API searches with. */
export type CourseSearchDeps = Pick<CourseRoutesOptions, "vectors" | "embedder">;

/**
 * The search form's fields checked as `GET /api/v1/courses/:id/search` checks them: `null` when
 * no search was asked (no `q`), else the query or a message saying what is wrong with it.
 */
export function searchInput(
  q: string | undefined,
  k: string | undefined,
): { q: string; k: number } | { q: string; k: string; error: string } | null {
  if (q === undefined) return null;
  const shown = { q: q.slice(0, COURSE_SEARCH.maxQueryChars), k: k ?? "" };
  if (q.includes("\u0000") || k?.includes("\u0000")) {
    return { ...shown, error: "The search holds a NUL character." };
  }
  const parsed = courseSearchQuery.safeParse({ q, ...(k === undefined || k === "" ? {} : { k }) });
  if (parsed.success) return parsed.data;
  const fields = new Set(parsed.error.issues.map((i) => String(i.path[0])));
  const error = fields.has("q")
    ? q.trim() === ""
      ? "Type a word or a phrase to search for."
      : `The search is too long: at most ${COURSE_SEARCH.maxQueryChars} characters.`
    : `Results must be a whole number from 1 to ${COURSE_SEARCH.maxResults}.`;
  return { ...shown, error };
}

/**
 * Registers the data pages on `app`. Both read the principal's own tenant: datasets, courses and
 * usage are a tenant's data, not the system's, even for an admin key.
 */
export function dataPages(
  // deno-lint-ignore no-explicit-any
  app: Hono<any>,
  { runtime, datasets, courses, frame }: {
    runtime: Runtime;
    datasets: boolean;
    /** The course workload's search adapters (the API's); absent: no course pages. */
    courses: CourseSearchDeps | undefined;
    // deno-lint-ignore no-explicit-any
    frame: (c: Context<any>, title: string, active?: string) => Frame;
  },
) {
  const principal = (c: Context) => c.get("principal") as Principal;
  if (datasets) {
    app.get("/datasets", async (c) => {
      const list = await listDatasets(runtime.db, principal(c).tenantId, { limit: 100 });
      return page(c, <DatasetsPage {...frame(c, "Datasets", "datasets")} items={list.items} />);
    });
    app.get("/datasets/:id", async (c) => {
      const dataset = await getDataset(runtime.db, c.req.param("id"), principal(c).tenantId);
      return page(c, <DatasetPage {...frame(c, dataset.name, "datasets")} dataset={dataset} />);
    });
    app.get("/datasets/:id/rows", async (c) => {
      const dataset = await getDataset(runtime.db, c.req.param("id"), principal(c).tenantId);
      const after = Math.max(-1, Math.trunc(Number(c.req.query("after") ?? -1)) || -1);
      const rows = dataset.status === "ready"
        ? await rowsAfter(
          runtime.db,
          dataset.id,
          dataset.columns.map((col) => col.key),
          after,
          ROWS_PAGE,
        )
        : [];
      const next = rows.length === ROWS_PAGE ? Number(rows.at(-1)!._row) : null;
      return page(
        c,
        <RowsPage
          {...frame(c, `${dataset.name}: rows`, "datasets")}
          dataset={dataset}
          rows={rows}
          next={next}
        />,
      );
    });
  }
  if (courses) {
    app.get("/courses", async (c) => {
      const items = await runtime.db.query<CourseRow>(
        `SELECT id, title, status, created_at FROM troupe_courses WHERE tenant_id = $1
         ORDER BY id DESC LIMIT 100`,
        [principal(c).tenantId],
      );
      return page(c, <CoursesPage {...frame(c, "Courses", "courses")} items={items} />);
    });
    app.get("/courses/:id", async (c) => {
      const { tenantId } = principal(c);
      const course = await getCourseView(runtime.db, c.req.param("id"), tenantId);
      const asked = searchInput(c.req.query("q"), c.req.query("k"));
      const search: CourseSearch | null = asked === null || "error" in asked ? asked : {
        ...asked,
        results: await searchCourse(
          runtime.db,
          courses.vectors,
          courses.embedder,
          course.id,
          tenantId,
          asked.q,
          asked.k,
        ),
      };
      return page(
        c,
        <CoursePage {...frame(c, course.title, "courses")} course={course} search={search} />,
        search && "error" in search ? 400 : 200,
      );
    });
  }
  app.get("/usage", async (c) => {
    const fromDay = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 10);
    const { days } = await dailyUsage(runtime.db, principal(c).tenantId, {
      fromDay,
      toDay: null,
    });
    return page(c, <UsagePage {...frame(c, "Usage", "usage")} days={days} />);
  });
}
