/**
 * Configuration: environment variables validated by one zod schema. A missing or malformed
 * value stops the start with a message naming the variable.
 */
import { z } from "zod";

const int = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(
    z.number().int().min(min).max(max),
  );

export const configSchema = z.object({
  PORT: int(1, 65_535).default(8000),
  HOST: z.string().trim().min(1).default("127.0.0.1"),
  DATA_DIR: z.string().trim().min(1).default(".data"),
  DATABASE_URL: z.string().trim().refine(
    (v) => /^postgres(ql)?:\/\/[^\s]+$/.test(v) && URL.canParse(v),
    "must be a postgres:// or postgresql:// URL",
  ).optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
  RETENTION_DAYS: int(1, 3650).default(7),
  WORKER_CONCURRENCY: int(1, 10_000).default(256),
  LEASE_MS: int(1000, 3_600_000).default(30_000),
  DATABASE_POOL_SIZE: int(1, 500).default(10),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses `env`; empty strings count as unset. Throws `ConfigError` naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const relevant: Record<string, string> = {};
  for (const name of Object.keys(configSchema.shape)) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") relevant[name] = value;
  }
  const parsed = configSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? "?");
        const got = relevant[name];
        return `${name}: ${i.message}${got === undefined ? "" : ` (got ${JSON.stringify(got)})`}`;
      }),
    );
  }
  return parsed.data;
}
