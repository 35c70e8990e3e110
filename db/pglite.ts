/** The embedded PostgreSQL adapter; it ships with the runtime package (`@troupe/runtime/pglite`). */
export * from "../actors/runtime/drivers/pglite.ts";
