-- End messages: a job or pipeline may carry a message (`on_end`, built and validated when it
-- was enqueued) that is sent when it ends. The trigger inserts it in the transaction that moves
-- the row from queued/running to succeeded/failed/cancelled, whichever path does it (a commit,
-- a cancel, the reaper, a transport giving up, a pipeline's roll-up): exactly once, since a
-- row leaves queued/running once and the message's id is fixed.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "on_end" jsonb;
--> statement-breakpoint
CREATE FUNCTION {{schema}}."troupe_job_ended"() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  m jsonb := NEW.on_end;
BEGIN
  INSERT INTO {{schema}}."troupe_jobs" (id, actor, key, tenant_id, input, priority, max_attempts,
    parent_id, input_version, traceparent, tracestate)
  VALUES (m->>'id', m->>'actor', m->>'key', NEW.tenant_id,
    coalesce(m->'input', '{}'::jsonb) || jsonb_build_object('job', jsonb_build_object(
      'id', NEW.id, 'kind', NEW.kind, 'actor', NEW.actor, 'status', NEW.status,
      'result', NEW.result, 'error', NEW.error,
      'finishedAt', to_char(coalesce(NEW.finished_at, now()) AT TIME ZONE 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))),
    coalesce((m->>'priority')::int, 0), (m->>'maxAttempts')::int, NEW.id,
    coalesce((m->>'inputVersion')::int, 1), NEW.traceparent, NEW.tracestate)
  ON CONFLICT (id) DO NOTHING;
  IF FOUND THEN
    IF coalesce((m->>'outbox')::boolean, false) THEN
      INSERT INTO {{schema}}."troupe_outbox" (job_id) VALUES (m->>'id') ON CONFLICT DO NOTHING;
    END IF;
    IF m->>'channel' IS NOT NULL THEN
      PERFORM pg_notify(m->>'channel', '');
    END IF;
  END IF;
  RETURN NULL;
END
$fn$;
--> statement-breakpoint
CREATE TRIGGER "troupe_jobs_ended" AFTER UPDATE OF "status" ON {{schema}}."troupe_jobs"
  FOR EACH ROW
  WHEN (NEW.on_end IS NOT NULL AND OLD.status IN ('queued', 'running')
    AND NEW.status IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION {{schema}}."troupe_job_ended"();
