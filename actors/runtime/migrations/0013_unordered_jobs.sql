-- Jobs of actors declared `ordered: false` are claimed without their key's lease: under the
-- instance lease of the process that claimed them (`~instance:<worker id>` in
-- troupe_actor_state). The claim records which lease a running job is under, for the reaper
-- and the commit's checks. A constant default: no table rewrite.
ALTER TABLE {{schema}}."troupe_jobs" ADD COLUMN "unordered" boolean DEFAULT false NOT NULL;
