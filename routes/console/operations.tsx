/**
 * The console's operations pages: the instances (heartbeats, jobs running on each, delayed
 * jobs), pausing and resuming an actor's queue or a schedule, and an actor's keys.
 *
 * A tenant's key sees the instances without host or pid and only its tenant's jobs; pausing,
 * resuming and the keys (other tenants' state) need an admin key (a 403 page otherwise). The
 * POSTs carry the session's CSRF token (checked by the console's middleware).
 */
import type { Context, Hono } from "hono";
import type { ActorKeyView, JobBriefView, Runtime, WorkersView } from "@troupe/runtime";
import type { Principal, TenantStore } from "../../db/tenants.ts";
import { ErrorPage, type Frame, Json, Layout, page, when } from "./layout.tsx";

function JobList({ jobs, empty }: { jobs: JobBriefView[]; empty: string }) {
  if (jobs.length === 0) return <span class="muted">{empty}</span>;
  return (
    <ul class="plain">
      {jobs.map((j) => (
        <li data-job={j.id}>
          <code title={j.id}>{j.id.slice(-12)}</code> {j.actor}{" "}
          <span class="muted small">
            {j.key} · attempt {j.attempts}/{j.maxAttempts}
            {j.startedAt ? ` · since ${when(j.startedAt)}` : ""}
          </span>
        </li>
      ))}
    </ul>
  );
}

export function InstancesPage(p: Frame & { view: WorkersView }) {
  const { instances, unowned, scheduled, paused, capped } = p.view;
  return (
    <Layout {...p}>
      <table id="instances">
        <thead>
          <tr>
            <th>Instance</th>
            <th>Transport</th>
            <th>Last seen</th>
            <th>In flight / slots</th>
            <th>Running here</th>
          </tr>
        </thead>
        <tbody>
          {instances.map((i) => (
            <tr data-instance={i.id}>
              <td>
                <code>{i.id}</code>
                {i.host && <div class="muted small">{i.host} pid {i.pid}</div>}
                <div class="muted small">started {when(i.startedAt)}</div>
              </td>
              <td>
                {i.transport} ({i.mode})
              </td>
              <td data-field="seen">
                {i.stoppedAt
                  ? <span class="muted">stopped {when(i.stoppedAt)}</span>
                  : `${i.idleSeconds.toFixed(1)} s ago`}
              </td>
              <td>{i.inFlight} / {i.concurrency}</td>
              <td>
                <JobList jobs={i.active} empty="nothing" />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {instances.length === 0 && <p class="muted">No instance seen in the last hour.</p>}
      <h2>Running without a live lease</h2>
      <JobList jobs={unowned} empty="none (the reaper requeues such jobs)" />
      <h2>Delayed</h2>
      <p class="muted small">
        Delays, retries' backoff and runs-again-later: they belong to no instance until due.
      </p>
      <table id="scheduled">
        <tbody>
          {scheduled.map((j) => (
            <tr data-job={j.id}>
              <td>
                <code title={j.id}>{j.id.slice(-12)}</code>
              </td>
              <td>{j.actor}</td>
              <td class="small">{j.key}</td>
              <td class="small">due {when(j.runAt)}</td>
              <td class="small">attempts {j.attempts}/{j.maxAttempts}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {scheduled.length === 0 && <p class="muted">No delayed job.</p>}
      <h2>Paused actors</h2>
      {paused.length === 0 ? <p class="muted">None.</p> : (
        <ul class="plain" id="paused">
          {paused.map((x) => <li key={x.actor}>{x.actor} since {when(x.pausedAt)}</li>)}
        </ul>
      )}
      {capped && <p class="muted">The lists stopped at their limit.</p>}
    </Layout>
  );
}

export function KeysPage(p: Frame & { actor: string; keys: ActorKeyView[]; next: string | null }) {
  return (
    <Layout {...p}>
      <table id="keys">
        <thead>
          <tr>
            <th>Key</th>
            <th>State</th>
            <th>Version</th>
            <th>Lease holder</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {p.keys.map((k) => (
            <tr data-key={k.key}>
              <td>
                <code>{k.key}</code>
              </td>
              <td>
                <Json value={k.state} />
              </td>
              <td>{k.version}</td>
              <td data-field="lease">
                {k.leaseOwner
                  ? (
                    <span>
                      <code>{k.leaseOwner}</code>{" "}
                      <span class="muted small">until {when(k.leaseUntil)}</span>
                    </span>
                  )
                  : <span class="muted">free</span>}
              </td>
              <td class="small">{when(k.updatedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.keys.length === 0 && <p class="muted">No key leased by this actor yet.</p>}
      {p.next && (
        <a
          href={`/console/actors/${encodeURIComponent(p.actor)}/keys?after=${
            encodeURIComponent(p.next)
          }`}
        >
          More →
        </a>
      )}
    </Layout>
  );
}

const KEYS_PAGE = 100;

export function operationPages(
  // deno-lint-ignore no-explicit-any
  app: Hono<any>,
  { runtime, tenants, frame }: {
    runtime: Runtime;
    tenants: TenantStore;
    // deno-lint-ignore no-explicit-any
    frame: (c: Context<any>, title: string, active?: string) => Frame;
  },
): void {
  const principal = (c: Context) => c.get("principal") as Principal;
  /** The admin principal, or null when the key is not an admin's. */
  const admin = (c: Context) => principal(c).admin ? principal(c) : null;
  const forbidden = (c: Context, what: string) =>
    page(
      c,
      <ErrorPage {...frame(c, "Forbidden")} message={`${what} needs an admin key.`} />,
      403,
    );

  app.get("/instances", async (c) => {
    const p = principal(c);
    const view = await runtime.workers(p.admin ? {} : { tenantId: p.tenantId });
    return page(c, <InstancesPage {...frame(c, "Instances", "instances")} view={view} />);
  });

  for (const action of ["pause", "resume"] as const) {
    app.post(`/actors/:name/${action}`, async (c) => {
      const p = admin(c);
      if (!p) return forbidden(c, `${action === "pause" ? "Pausing" : "Resuming"} an actor`);
      const name = c.req.param("name");
      if (action === "pause") await runtime.pause(name, p.apiKeyId);
      else await runtime.resume(name);
      await tenants.audit({
        tenantId: p.tenantId,
        apiKeyId: p.apiKeyId,
        action: `actor.${action}`,
        targetType: "actor",
        targetId: name,
        details: { via: "console" },
      });
      return c.redirect(`/console/actors?notice=${action}d`, 303);
    });
  }

  for (const action of ["pause", "resume"] as const) {
    app.post(`/schedules/:name/${action}`, async (c) => {
      const p = admin(c);
      if (!p) return forbidden(c, `${action === "pause" ? "Pausing" : "Resuming"} a schedule`);
      const name = c.req.param("name");
      if (!runtime.actors.get(name)?.schedule) {
        return page(
          c,
          <ErrorPage {...frame(c, "Not found")} message={`No schedule of ${name}.`} />,
          404,
        );
      }
      if (action === "pause") await runtime.pauseSchedule(name, p.apiKeyId);
      else await runtime.resumeSchedule(name);
      await tenants.audit({
        tenantId: p.tenantId,
        apiKeyId: p.apiKeyId,
        action: `schedule.${action}`,
        targetType: "schedule",
        targetId: name,
        details: { via: "console" },
      });
      return c.redirect(`/console/schedules?notice=schedule-${action}d`, 303);
    });
  }

  app.get("/actors/:name/keys", async (c) => {
    if (!admin(c)) return forbidden(c, "An actor's keys");
    const name = c.req.param("name");
    const after = c.req.query("after")?.slice(0, 500) || undefined;
    const keys = await runtime.actorKeys(name, {
      limit: KEYS_PAGE,
      ...(after !== undefined ? { after } : {}),
    });
    const next = keys.length === KEYS_PAGE ? keys[keys.length - 1]!.key : null;
    return page(
      c,
      <KeysPage {...frame(c, `Keys of ${name}`, "actors")} actor={name} keys={keys} next={next} />,
    );
  });
}
