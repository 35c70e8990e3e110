CREATE TABLE "troupe_course_vectors" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"course_id" text NOT NULL,
	"vector" real[] NOT NULL
);
--> statement-breakpoint
CREATE INDEX "troupe_course_vectors_course_idx" ON "troupe_course_vectors" USING btree ("tenant_id","course_id","id");