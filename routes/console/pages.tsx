/** The console's pages, each a pure function of what its route read. */
import type { DeadLetterView, JobView } from "@troupe/runtime";
import { isTerminal, JOB_STATUSES } from "@troupe/runtime";
import { CsrfField, type Frame, Json, Layout, when } from "./layout.tsx";
import { RetryForm } from "./system.tsx";

export interface JobsProps extends Frame {
  jobs: JobView[];
  actors: string[];
  filter: { status?: string | undefined; actor?: string | undefined };
  nextCursor: string | null;
  canWrite: boolean;
  csrf: string;
}

const query = (params: Record<string, string | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
};

export function JobsPage(p: JobsProps) {
  const back = `/console/jobs${query(p.filter)}`;
  return (
    <Layout {...p}>
      <form method="get" action="/console/jobs" class="filters">
        <label>
          Status{" "}
          <select name="status">
            <option value="">any</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s} selected={p.filter.status === s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Actor{" "}
          <select name="actor">
            <option value="">any</option>
            {p.actors.map((a) => (
              <option key={a} value={a} selected={p.filter.actor === a}>{a}</option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      {p.canWrite && (p.filter.status === undefined || p.filter.status === "failed") && (
        <RetryForm csrf={p.csrf} actor={p.filter.actor} />
      )}
      <table id="jobs" data-live="/console/events">
        <thead>
          <tr>
            <th>Job</th>
            <th>Actor</th>
            <th>Status</th>
            <th>Progress</th>
            <th>Attempts</th>
            <th>Result or error</th>
            <th>Created</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {p.jobs.map((j) => (
            <tr data-job={j.id}>
              <td>
                <code title={j.id}>{j.id.slice(-12)}</code>
                {j.tenantId && p.principal?.admin && (
                  <div class="muted small">tenant {j.tenantId.slice(-8)}</div>
                )}
              </td>
              <td>{j.actor}</td>
              <td>
                <span class={`status s-${j.status}`} data-field="status">{j.status}</span>
              </td>
              <td>
                <progress max="100" value={String(j.progress)} data-field="progress">
                  {j.progress}%
                </progress>
                <span class="small" data-field="message">{j.progressMessage ?? ""}</span>
              </td>
              <td data-field="attempts">{j.attempts}/{j.maxAttempts}</td>
              <td data-field="outcome">
                {j.error ? <Json value={j.error} /> : <Json value={j.result} />}
              </td>
              <td class="small">{when(j.createdAt)}</td>
              <td>
                {p.canWrite && !isTerminal(j.status) && (
                  <form method="post" action={`/console/jobs/${j.id}/cancel`} data-field="cancel">
                    <CsrfField token={p.csrf} />
                    <input type="hidden" name="back" value={back} />
                    <button type="submit" class="danger">Cancel</button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.jobs.length === 0 && <p class="muted">No jobs.</p>}
      {p.nextCursor && (
        <a href={`/console/jobs${query({ ...p.filter, cursor: p.nextCursor })}`}>Older →</a>
      )}
    </Layout>
  );
}

export interface DeadLettersProps extends Frame {
  items: DeadLetterView[];
  nextCursor: string | null;
  canWrite: boolean;
  csrf: string;
}

export function DeadLettersPage(p: DeadLettersProps) {
  return (
    <Layout {...p}>
      <table id="dead-letters">
        <thead>
          <tr>
            <th>Dead letter</th>
            <th>Actor</th>
            <th>Attempts</th>
            <th>Error and input</th>
            <th>Dead since</th>
            <th>Replay</th>
          </tr>
        </thead>
        <tbody>
          {p.items.map((d) => (
            <tr data-dead-letter={d.id}>
              <td>
                <code title={d.id}>{d.id.slice(-12)}</code>
                <div class="muted small">job {d.jobId.slice(-12)}</div>
              </td>
              <td>{d.actor}</td>
              <td>{d.attempts}</td>
              <td>
                <details>
                  <summary>
                    <Json value={d.error} max={80} />
                  </summary>
                  <h3>Error</h3>
                  <pre>{JSON.stringify(d.error, null, 2)}</pre>
                  <h3>Input</h3>
                  <pre>{JSON.stringify(d.input, null, 2)}</pre>
                </details>
              </td>
              <td class="small">{when(d.createdAt)}</td>
              <td>
                {d.replayedAt
                  ? (
                    <span class="small">
                      replayed {when(d.replayedAt)} as <code>{d.replayJobId?.slice(-12)}</code>
                    </span>
                  )
                  : p.canWrite && (
                    <form method="post" action={`/console/dead-letters/${d.id}/replay`}>
                      <CsrfField token={p.csrf} />
                      <button type="submit">Replay</button>
                    </form>
                  )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.items.length === 0 && <p class="muted">No dead letters.</p>}
      {p.nextCursor && (
        <a href={`/console/dead-letters?cursor=${encodeURIComponent(p.nextCursor)}`}>Older →</a>
      )}
    </Layout>
  );
}

export interface ActorRow {
  actor: string;
  queued: number;
  running: number;
  oldestSeconds: number | null;
  schedule: string | null;
  /** When it was paused (ISO 8601), or null. */
  pausedAt: string | null;
  /** Jobs finished in the last hour, by outcome. */
  succeeded: number;
  failed: number;
  /** Successes over successes and failures in the last hour, or null when there were none. */
  successRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
}

const ms = (v: number | null) =>
  v === null ? "—" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`;

export function ActorsPage(
  p: Frame & { rows: ActorRow[]; capped: boolean; sampled: boolean; canPause: boolean },
) {
  return (
    <Layout {...p}>
      <table id="actors">
        <thead>
          <tr>
            <th>Actor</th>
            <th>Queued</th>
            <th>In flight</th>
            <th>Oldest due wait</th>
            <th title="jobs finished in the last hour">Succeeded / failed (1 h)</th>
            <th>Success rate</th>
            <th title="handler duration of the last attempt, last hour">p50</th>
            <th>p99</th>
            <th>Schedule</th>
            <th>Queue</th>
          </tr>
        </thead>
        <tbody>
          {p.rows.map((r) => (
            <tr data-actor={r.actor}>
              <td>
                {p.canPause
                  ? <a href={`/console/actors/${encodeURIComponent(r.actor)}/keys`}>{r.actor}</a>
                  : r.actor}
              </td>
              <td data-field="queued">{r.queued}</td>
              <td data-field="running">{r.running}</td>
              <td>{r.oldestSeconds === null ? "—" : `${r.oldestSeconds.toFixed(1)} s`}</td>
              <td data-field="outcomes">{r.succeeded} / {r.failed}</td>
              <td data-field="rate">
                {r.successRate === null ? "—" : `${(r.successRate * 100).toFixed(1)} %`}
              </td>
              <td data-field="p50">{ms(r.p50Ms)}</td>
              <td data-field="p99">{ms(r.p99Ms)}</td>
              <td>{r.schedule ? <code>{r.schedule}</code> : ""}</td>
              <td data-field="pause">
                {r.pausedAt
                  ? <span class="status s-cancelled" title={when(r.pausedAt)}>paused</span>
                  : <span class="muted">running</span>}
                {p.canPause && p.csrf && (
                  <form
                    method="post"
                    action={`/console/actors/${encodeURIComponent(r.actor)}/${
                      r.pausedAt ? "resume" : "pause"
                    }`}
                  >
                    <CsrfField token={p.csrf} />
                    {r.pausedAt
                      ? <button type="submit">Resume</button>
                      : <button type="submit" class="danger">Pause</button>}
                  </form>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.capped && <p class="muted">Queue depths are lower bounds (the count stopped early).</p>}
      {p.sampled && (
        <p class="muted">The hour's figures are those of its most recent jobs (a sample).</p>
      )}
    </Layout>
  );
}

export interface ScheduleRow {
  actor: string;
  cron: string;
  nextRunAt: string;
  lastSlotAt: string | null;
  pausedAt: string | null;
  lastRun: {
    jobId: string;
    status: string;
    finishedAt: string | null;
    result: unknown;
    error: unknown;
  } | null;
}

export function SchedulesPage(
  p: Frame & { items: ScheduleRow[] | null; canPause: boolean; csrf: string },
) {
  return (
    <Layout {...p}>
      {p.items === null
        ? <p class="muted">Schedules are the system's: log in with an admin key to see them.</p>
        : (
          <table id="schedules">
            <thead>
              <tr>
                <th>Actor</th>
                <th>Cron</th>
                <th>Next run</th>
                <th>Latest slot</th>
                <th>Its job</th>
                <th>Result or error</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {p.items.map((s) => (
                <tr data-schedule={s.actor}>
                  <td>{s.actor}</td>
                  <td>
                    <code>{s.cron}</code>
                  </td>
                  <td data-field="next">
                    {s.pausedAt ? <span class="muted">paused</span> : when(s.nextRunAt)}
                  </td>
                  <td>{when(s.lastSlotAt)}</td>
                  <td data-field="last">
                    {s.lastRun
                      ? (
                        <span>
                          <code title={s.lastRun.jobId}>{s.lastRun.jobId.slice(-12)}</code>{" "}
                          <span class={`status s-${s.lastRun.status}`}>{s.lastRun.status}</span>
                          <div class="muted small">{when(s.lastRun.finishedAt)}</div>
                        </span>
                      )
                      : <span class="muted">none</span>}
                  </td>
                  <td>
                    {s.lastRun?.error
                      ? <Json value={s.lastRun.error} />
                      : s.lastRun?.result !== undefined
                      ? <Json value={s.lastRun.result} />
                      : null}
                  </td>
                  <td data-field="pause">
                    {s.pausedAt
                      ? <span class="error">paused {when(s.pausedAt)}</span>
                      : <span>active</span>}
                    {p.canPause && (
                      <form
                        method="post"
                        action={`/console/schedules/${encodeURIComponent(s.actor)}/${
                          s.pausedAt ? "resume" : "pause"
                        }`}
                      >
                        <CsrfField token={p.csrf} />
                        <button type="submit" class={s.pausedAt ? "" : "danger"}>
                          {s.pausedAt ? "Resume" : "Pause"}
                        </button>
                      </form>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
    </Layout>
  );
}
