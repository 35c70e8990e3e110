/**
 * `deno task test`: starts what the tests use (tests/services.sh installs and starts PostgreSQL,
 * Redis, pdftotext and the Chroma test server when missing), runs every test, then the API tests
 * again on the production drivers. Both runs report their counts even when the first fails; the
 * exit code is the first failure's. Extra arguments go to both `deno test` runs.
 *
 *   deno run -A tests/run.ts [deno test flags]
 */
const root = new URL("..", import.meta.url).pathname;

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const { code } = await new Deno.Command(cmd, { args, cwd: root, env }).spawn().status;
  return code;
}

await run("bash", ["tests/services.sh"]);
const extra = Deno.args;
const first = await run(Deno.execPath(), ["test", "-A", "--parallel", ...extra]);
const second = await run(Deno.execPath(), ["test", "-A", "--parallel", ...extra, "routes/"], {
  TEST_API_DRIVERS: "production",
});
Deno.exit(first || second);
