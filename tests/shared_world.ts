/**
 * A world (database, runtime, server…) shared by the tests of one file. It is opened in the
 * file's `Deno.test.beforeAll` hook and closed in its `afterAll`, so no test opens what it
 * does not close: with the resource sanitizer on, a test is flagged only for what it leaks
 * itself. Each case keeps its own name and count and no test exists only to close things.
 *
 *     const shared = sharedWorld(openMyWorld);
 *     Deno.test({ name: "x: does a thing" }, async () => {
 *       const w = await shared.open();
 *       …
 *     });
 *
 * The world is opened even when `--filter` leaves none of the file's tests to run. A shared
 * world whose runtime polls between tests keeps the ops sanitizer off: its timers start in one
 * test and end in another.
 */
export interface SharedWorld<W> {
  /** The world opened before the file's first test. */
  open(): Promise<W>;
}

export function sharedWorld<W extends { close(): Promise<void> }>(
  openWorld: () => Promise<W>,
): SharedWorld<W> {
  let world: Promise<W> | undefined;
  const open = () => world ??= openWorld();
  Deno.test.beforeAll(async () => {
    await open();
  });
  Deno.test.afterAll(async () => {
    if (world) await (await world).close();
  });
  return { open };
}

/**
 * The sanitizer settings of a test that uses a shared world: both off, since the world's
 * runtime polls between tests and PGlite's backend arms timers of its own (a timer counts for
 * both sanitizers). What a test opens beside the world it must still close. The world runs
 * through every test of its file, so a sanitized test that needs no world goes in another file.
 */
export const SHARED_WORLD_TEST: Pick<Deno.TestDefinition, "sanitizeOps" | "sanitizeResources"> = {
  sanitizeOps: false,
  sanitizeResources: false,
};
