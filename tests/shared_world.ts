/**
 * A world (database, runtime, server…) shared by the tests of one file: the `afterAll` that
 * `Deno.test` lacks. The first test that calls `open()` opens it; it is closed in the `finally`
 * of the last test registered through `test` (Deno runs a file's tests in registration order),
 * so each case keeps its own name and count and no test exists only to close things.
 *
 *     const shared = sharedWorld(openMyWorld);
 *     shared.test({ name: "x: does a thing", ...opts }, async () => {
 *       const w = await shared.open();
 *       …
 *     });
 *
 * Tests marked `ignore` are not counted. Under `--filter`, the last registered test may not
 * run: the world then stays open until the test process exits.
 */
export interface SharedWorld<W> {
  /** The world, opened on first use. */
  open(): Promise<W>;
  /** `Deno.test`, counted so that the last one closes the world. */
  test(def: Deno.TestDefinition): void;
  test(def: Omit<Deno.TestDefinition, "fn">, fn: () => void | Promise<void>): void;
  test(name: string, fn: () => void | Promise<void>): void;
}

export function sharedWorld<W extends { close(): Promise<void> }>(
  openWorld: () => Promise<W>,
): SharedWorld<W> {
  let world: Promise<W> | undefined;
  let registered = 0;
  let finished = 0;
  const open = () => world ??= openWorld();
  function test(
    def: string | Deno.TestDefinition | Omit<Deno.TestDefinition, "fn">,
    fn?: () => void | Promise<void>,
  ): void {
    const d: Deno.TestDefinition = typeof def === "string"
      ? { name: def, fn: fn! }
      : { ...def, fn: fn ?? (def as Deno.TestDefinition).fn };
    if (!d.ignore) registered++;
    const body = d.fn;
    Deno.test({
      ...d,
      async fn(t) {
        try {
          await body(t);
        } finally {
          if (++finished === registered && world) await (await world).close();
        }
      },
    });
  }
  return { open, test };
}
