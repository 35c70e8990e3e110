/** The node-postgres adapter; it ships with the runtime package (`@troupe/runtime/postgres`). */
export * from "../actors/runtime/drivers/postgres.ts";
