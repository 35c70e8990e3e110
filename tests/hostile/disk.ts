/**
 * A full disk for tests: a tiny tmpfs mounted in a temporary directory. Mounting needs the
 * right to (root, or CAP_SYS_ADMIN); where it is missing the helper says so with `null` and
 * the tests that need a real full disk are skipped.
 */

export interface TinyDisk {
  /** The mount point (an empty directory on the tmpfs). */
  path: string;
  /** Unmounts it and removes the directory. */
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `bytes` at a new temporary directory, or `null` when that is not allowed. */
export async function mountTinyTmpfs(bytes: number): Promise<TinyDisk | null> {
  if (Deno.build.os !== "linux") return null;
  const path = await Deno.makeTempDir({ prefix: "troupe-full-" });
  const run = (cmd: string, args: string[]) =>
    new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output()
      .then((o) => o.success, () => false);
  if (!await run("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", path])) {
    await Deno.remove(path).catch(() => {});
    return null;
  }
  return {
    path,
    async unmount() {
      await run("umount", [path]);
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Whether this process may mount a tmpfs (tried once with a tiny one, unmounted at once). */
export async function canMountTmpfs(): Promise<boolean> {
  const disk = await mountTinyTmpfs(64 * 1024);
  await disk?.unmount();
  return disk !== null;
}
