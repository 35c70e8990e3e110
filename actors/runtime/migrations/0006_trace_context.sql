-- Trace context: the W3C `traceparent` (and `tracestate`) active when a message was made, so
-- its handler's span continues the trace of the request or handler that sent it.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "traceparent" text;
--> statement-breakpoint
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "tracestate" text;
