/**
 * `deno task tenant:delete <tenant id or name>`: deletes a tenant with all its data in a
 * `tenant.delete` job, shows its progress and prints what it removed (JSON).
 *
 * Through the API of the server holding the data directory, as `deno task run` finds it
 * (`DELETE /api/v1/tenants/:id`; `TROUPE_API_KEY` must be an admin key, the id a tenant id);
 * otherwise on the database directly: the job runs in this process (no key needed, the
 * database is the operator's; a name is accepted too). Exit status: 0 done, 1 failed, 2 usage.
 */
import type { Composed } from "../main.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { apiKey, findServer, remoteApi, UsageError } from "./run.ts";
import { ApiError, apiError, followJob, type JobSeen, ProgressView } from "./run_follow.ts";

const USAGE = "usage: deno task tenant:delete <tenant id or name>";

/** Follows a job of this process's runtime until it ends. */
async function followLocal(
  troupe: Composed,
  id: string,
  onUpdate: (job: JobSeen) => void,
): Promise<JobSeen> {
  let wake = () => {};
  const unsubscribe = troupe.runtime.subscribe((changed) => changed === id && wake());
  try {
    for (;;) {
      const job = await troupe.runtime.getJob(id) as JobSeen;
      onUpdate(job);
      if (["succeeded", "failed", "cancelled"].includes(job.status)) return job;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    unsubscribe();
  }
}

export async function main(
  args: string[],
  env: Record<string, string> = Deno.env.toObject(),
): Promise<number> {
  let troupe: Composed | null = null;
  try {
    if (args.length !== 1 || args[0]!.startsWith("-")) throw new UsageError("name one tenant");
    const target = args[0]!;
    const config = loadConfig(env);
    const view = new ProgressView({
      write: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)),
      tty: Deno.stderr.isTerminal(),
    });
    const server = await findServer(config, env);
    let job: JobSeen;
    if (server) {
      const api = remoteApi(server, await apiKey(config, env));
      console.error(`tenant:delete: via ${server}`);
      const res = await api.fetch(`/tenants/${encodeURIComponent(target)}`, { method: "DELETE" });
      if (!res.ok) throw await apiError(res);
      const { jobId } = await res.json() as { jobId: string };
      job = await followJob(api.fetch, jobId, (j) => view.update(j)).finally(() => view.end());
    } else {
      const { compose } = await import("../main.ts");
      troupe = await compose({ ...config, LOG_LEVEL: env.LOG_LEVEL ? config.LOG_LEVEL : "error" });
      const [tenant] = await troupe.db.query<{ id: string }>(
        // A tenant deleted already: its deletion's record (the job returns it again).
        `SELECT id FROM troupe_tenants WHERE id = $1 OR name = $1
         UNION ALL SELECT target_id FROM troupe_audit_log
         WHERE tenant_id IS NULL AND action = 'tenant.delete' AND target_id = $1 LIMIT 1`,
        [target],
      );
      if (!tenant) throw new ApiError(404, "NOT_FOUND", `no tenant "${target}"`);
      console.error(`tenant:delete: embedded (${troupe.db.dialect})`);
      const { job: started } = await troupe.runtime.enqueue("tenant.delete", {
        tenantId: tenant.id,
      });
      const local = troupe;
      job = await followLocal(local, started.id, (j) => view.update(j)).finally(() => view.end());
    }
    if (job.status === "succeeded") {
      console.log(JSON.stringify(job.result, null, 2));
      return 0;
    }
    console.error(
      `tenant:delete: job ${job.id} ${job.status}: ${job.error?.code ?? job.status}: ${
        job.error?.message ?? ""
      }`,
    );
    return 1;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`tenant:delete: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    if (err instanceof ApiError) {
      console.error(`tenant:delete: ${err.code}: ${err.message}`);
      return 1;
    }
    console.error(`tenant:delete: ${(err as Error).message ?? err}`);
    return 1;
  } finally {
    await troupe?.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
