/**
 * `deno task stack`: the production services on one machine, for trying production mode
 * without accounts. In this one process:
 * - the QStash stand-in (signed webhooks, retries, DLQ, schedules);
 * - the Upstash REST bridge to the local Redis (127.0.0.1:6379);
 * - the Neon WebSocket bridge to the local PostgreSQL (127.0.0.1:5432), with a database
 *   `troupe_stack` created if missing.
 * It writes `.env.stack` with every variable main.ts needs, then:
 *
 *   deno task stack                 # keep it running
 *   deno task start:stack           # main.ts with .env.stack (QStash, Neon, Upstash drivers)
 *   deno task schedules:sync:stack  # QStash schedules for the scheduled actors
 *
 * Options: --qstash-port 8081 --redis-port 8079 --neon-port 4444 --app-port 8000
 *          --pg postgres://postgres@127.0.0.1:5432/postgres --database troupe_stack
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { startNeonBridge } from "../tests/fixtures/neon_bridge.ts";
import { startQStash } from "../tests/fixtures/qstash_server.ts";
import { startRedisBridge } from "../tests/fixtures/upstash_redis_bridge.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    "qstash-port": { type: "string", default: "8081" },
    "redis-port": { type: "string", default: "8079" },
    "neon-port": { type: "string", default: "4444" },
    "app-port": { type: "string", default: "8000" },
    pg: { type: "string", default: "postgres://postgres@127.0.0.1:5432/postgres" },
    database: { type: "string", default: "troupe_stack" },
    env: { type: "string", default: ".env.stack" },
  },
});

const secret = (prefix: string) =>
  prefix +
  [...crypto.getRandomValues(new Uint8Array(18))].map((b) => b.toString(16).padStart(2, "0")).join(
    "",
  );

if (!/^[a-z_][a-z0-9_]{0,62}$/.test(a.database)) throw new Error("--database: letters, digits, _");
const admin = new pg.Client({ connectionString: a.pg });
await admin.connect();
const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [a.database]);
if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${a.database}`);
await admin.end();
const dbUrl = new URL(a.pg);
dbUrl.pathname = `/${a.database}`;

const qstashToken = secret("qstash_");
const current = secret("sig_");
const next = secret("sig_");
const redisToken = secret("redis_");
const qstash = await startQStash({
  port: Number(a["qstash-port"]),
  token: qstashToken,
  currentSigningKey: current,
  nextSigningKey: next,
});
const redis = await startRedisBridge({ port: Number(a["redis-port"]), token: redisToken });
const neon = await startNeonBridge({ port: Number(a["neon-port"]) });

const env: Record<string, string> = {
  PORT: a["app-port"],
  PUBLIC_URL: `http://127.0.0.1:${a["app-port"]}`,
  DATABASE_URL: dbUrl.toString(),
  NEON_WS_PROXY: neon.wsProxy,
  QSTASH_URL: qstash.url,
  QSTASH_TOKEN: qstashToken,
  QSTASH_CURRENT_SIGNING_KEY: current,
  QSTASH_NEXT_SIGNING_KEY: next,
  UPSTASH_REDIS_REST_URL: redis.url,
  UPSTASH_REDIS_REST_TOKEN: redisToken,
  DEV_API_KEY: secret("trp_stack_"),
};
await Deno.writeTextFile(
  a.env,
  Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n") + "\n",
  { mode: 0o600 },
);
console.log(`local production stack is up; variables written to ${a.env}:`);
for (const [k, v] of Object.entries(env)) console.log(`  ${k}=${v}`);
console.log("\nnow: deno task start:stack   (Ctrl-C here stops the stack)");

const stop = async () => {
  await Promise.allSettled([qstash.close(), redis.close(), neon.close()]);
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
