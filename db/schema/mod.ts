/** Every table of Troupe, for drizzle-kit and typed queries. */
export * from "./runtime.ts";
export * from "./tenants.ts";
export * from "./blobs.ts";
export * from "./documents.ts";
export * from "./datasets.ts";
export * from "./courses.ts";
export * from "./usage.ts";
