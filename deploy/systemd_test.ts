/**
 * The systemd units of deploy/README.md's self-hosted recipe, checked with
 * `systemd-analyze verify` (skipped, saying so, where it is not installed). Its exit code stays
 * 0 on an unparsable directive, so any diagnostic at all fails the check.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const UNITS = new URL("./systemd/", import.meta.url).pathname;
const analyze = await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success, () => false);
if (!analyze) console.warn("systemd_test: systemd-analyze is not installed here: skipped");

/** `systemd-analyze verify` of the units (templates instantiated); its diagnostics. */
async function verify(edit: (unit: string) => string = (u) => u): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "troupe-units-" });
  try {
    const names = {
      "troupe-migrate.service": "troupe-migrate.service",
      "troupe-api@.service": "troupe-api@8001.service",
      "troupe-worker@.service": "troupe-worker@9001.service",
    };
    for (const [from, to] of Object.entries(names)) {
      await Deno.writeTextFile(join(dir, to), edit(await Deno.readTextFile(join(UNITS, from))));
    }
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", ...Object.values(names).map((n) => join(dir, n))],
      env: { SYSTEMD_LOG_LEVEL: "notice" },
    }).output();
    const said = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    return out.success ? said.trim() : `exit ${out.code}: ${said}`;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "self-hosted recipe: the migrate, api and worker units pass systemd-analyze verify",
  ignore: !analyze,
}, async () => {
  assert.equal(await verify(), "");
});

Deno.test({
  name: "self-hosted recipe: the check reports a broken directive",
  ignore: !analyze,
}, async () => {
  const said = await verify((u) => u.replace("Restart=on-failure", "Restart=sometimes"));
  assert.match(said, /restart specifier/);
});
