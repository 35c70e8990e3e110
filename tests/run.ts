/**
 * `deno task test`: starts what the tests use (tests/services.sh installs and starts PostgreSQL,
 * Redis, pdftotext and the Chroma test server when missing), runs every test, then the API tests
 * again on the production drivers, then the hostile suite (tests/hostile/) alone: it times a
 * server's answers under attack, which other test files on the same cores would blur. Each run
 * reports its counts even when an earlier one failed; the exit code is the first failure's.
 * Every run has the op and resource sanitizers on (`--sanitize-ops --sanitize-resources`; Deno
 * runs neither without them): a test that leaves a timer, a connection, a file or a response
 * body behind fails. A test whose leak is a third-party library's turns one off in its own
 * definition and says why. Extra arguments go to every `deno test` run.
 *
 *   deno run -A tests/run.ts [deno test flags]
 */
const root = new URL("..", import.meta.url).pathname;

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const { code } = await new Deno.Command(cmd, { args, cwd: root, env }).spawn().status;
  return code;
}

await run("bash", ["tests/services.sh"]);
const extra = ["--sanitize-ops", "--sanitize-resources", ...Deno.args];
const first = await run(Deno.execPath(), [
  "test",
  "-A",
  "--parallel",
  "--ignore=tests/hostile/",
  ...extra,
]);
const second = await run(Deno.execPath(), ["test", "-A", "--parallel", ...extra, "routes/"], {
  TEST_API_DRIVERS: "production",
});
const third = await run(Deno.execPath(), ["test", "-A", ...extra, "tests/hostile/"]);
Deno.exit(first || second || third);
