/**
 * Message versions: every message is stored with the version of its actor's input shape (see
 * `ActorConfig.version`). When it runs, a message of an older version is brought up to the
 * current one by the actor's `upgrade` functions, in turn, and only then parsed: a message
 * queued before a deploy that changed the shape runs upgraded instead of failing.
 */
import type { AnyActor } from "./define.ts";
import { NonRetryableError, TroupeError } from "./errors.ts";

/**
 * The stored input of a message of `version`, as the handler of `def` takes it: upgraded to
 * `def.version` (see `upgradeInput`), then parsed; `INVALID_INPUT` (not retried) when it does
 * not parse.
 */
export function decodeInput(def: AnyActor, stored: unknown, version: number): unknown {
  const value = upgradeInput(def, stored, version);
  const parsed = def.input.safeParse(value);
  if (!parsed.success) {
    throw new NonRetryableError(`stored input of ${def.name} (version ${version}) is invalid`, {
      code: "INVALID_INPUT",
      details: parsed.error.issues,
    });
  }
  return parsed.data;
}

/**
 * An input of `version` brought up to `def.version` by its `upgrade` functions, in turn.
 * Throws `INPUT_VERSION_UNKNOWN` (not retried) for an older version with no upgrade or an
 * upgrade that throws, and `INPUT_VERSION_AHEAD` (retried) for a version newer than `def`'s: a
 * process with the newer definition (a deploy under way) can run it.
 */
export function upgradeInput(def: AnyActor, stored: unknown, version: number): unknown {
  if (version > def.version) {
    throw new TroupeError(
      "INPUT_VERSION_AHEAD",
      `message of ${def.name} is version ${version}; this process knows up to ${def.version}`,
    );
  }
  let value = stored;
  for (let v = version; v < def.version; v++) {
    const step = def.upgrade[v];
    if (!step) {
      throw new NonRetryableError(`${def.name} has no upgrade from version ${v}`, {
        code: "INPUT_VERSION_UNKNOWN",
      });
    }
    try {
      value = step(value);
    } catch (err) {
      throw new NonRetryableError(`upgrade of ${def.name} from version ${v} failed`, {
        code: "INPUT_VERSION_UNKNOWN",
        cause: err,
      });
    }
  }
  return value;
}
