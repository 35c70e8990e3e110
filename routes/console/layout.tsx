/**
 * The console's frame and small shared pieces: no inline script or style (the CSP forbids
 * them), one stylesheet and one script served by the console itself.
 */
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { JSX } from "hono/jsx/jsx-runtime";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Principal } from "../../db/tenants.ts";

export interface Frame {
  title: string;
  principal?: Principal;
  csrf?: string;
  active?: string;
  notice?: string | undefined;
  /** Whether the datasets page exists (the workload runs). */
  datasets?: boolean;
  /** Whether the courses page exists. */
  courses?: boolean;
}

const CSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; " +
  "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** A page with the console's security headers. */
export function page(c: Context, body: JSX.Element | Promise<string> | string, status = 200) {
  c.header("Content-Security-Policy", CSP);
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Referrer-Policy", "same-origin");
  c.header("Cache-Control", "no-store");
  return c.html(body as string, status as ContentfulStatusCode);
}

const NAV: [string, string][] = [
  ["jobs", "Jobs"],
  ["dead-letters", "Dead letters"],
  ["actors", "Actors"],
  ["instances", "Instances"],
  ["schedules", "Schedules"],
  ["datasets", "Datasets"],
  ["courses", "Courses"],
  ["usage", "Usage"],
  ["cache", "Cache"],
];

export function Layout(props: Frame & { children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · Troupe console</title>
        <link rel="stylesheet" href="/console/static/console.css" />
        <link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml" />
        <script src="/console/static/console.js" defer></script>
      </head>
      <body>
        <header>
          <strong class="brand">Troupe</strong>
          {props.principal && (
            <nav>
              {NAV.filter(([path]) =>
                (path !== "datasets" || props.datasets) && (path !== "courses" || props.courses)
              ).map((
                [path, label],
              ) => (
                <a href={`/console/${path}`} class={props.active === path ? "active" : ""}>
                  {label}
                </a>
              ))}
            </nav>
          )}
          {props.principal && (
            <form method="post" action="/console/logout" class="logout">
              <span class="who">
                {props.principal.tenantName}
                {props.principal.admin ? " (admin: all tenants)" : ""}
              </span>
              <input type="hidden" name="_csrf" value={props.csrf} />
              <button type="submit">Log out</button>
            </form>
          )}
        </header>
        <main>
          <h1>{props.title}</h1>
          {props.notice && <p class="notice" role="status">{props.notice}</p>}
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A JSON value, shortened for a table cell; the whole value in its title. */
export function Json({ value, max = 120 }: { value: unknown; max?: number }) {
  if (value === null || value === undefined) return <span class="muted">—</span>;
  const text = JSON.stringify(value);
  return <code title={text}>{text.length > max ? `${text.slice(0, max)}…` : text}</code>;
}

export function CsrfField({ token }: { token: string }) {
  return <input type="hidden" name="_csrf" value={token} />;
}

export const when = (iso: string | null) => iso ? iso.replace("T", " ").slice(0, 19) : "—";

export function ErrorPage(props: Frame & { message: string }) {
  return (
    <Layout {...props}>
      <p class="error" role="alert">{props.message}</p>
    </Layout>
  );
}

export function LoginPage({ error, token }: { error?: string; token: string }) {
  return (
    <Layout title="Log in">
      {error && <p class="error" role="alert">{error}</p>}
      <form method="post" action="/console/login" class="login">
        <input type="hidden" name="_csrf" value={token} />
        <label>
          API key <input type="password" name="key" autocomplete="off" required />
        </label>
        <button type="submit">Log in</button>
      </form>
    </Layout>
  );
}
