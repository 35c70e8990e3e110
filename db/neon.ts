/** The Neon adapter; it ships with the runtime package (`@troupe/runtime/neon`). */
export * from "../actors/runtime/drivers/neon.ts";
