/** drizzle-kit's configuration (`deno task db:generate`); drizzle-kit is run from npm by the task. */
export default {
  dialect: "postgresql",
  schema: "./db/schema/mod.ts",
  out: "./db/migrations",
};
