/**
 * The parsers of environment variables deploy/config.ts is made of: each reads one value (a
 * string, trimmed, or unset) and gives its typed value or a message. Written without a schema
 * library so that a start reads its configuration without loading one: the edge entry
 * validates the whole environment before it answers its first health check, and zod's
 * modules alone would cost that check more than the rest of its start.
 *
 * Invariants:
 * - a value is trimmed before any test, and the trimmed value is what is kept;
 * - a field neither `optional` nor with a `default` reports an unset value as "required";
 * - a message never contains the value (deploy/config.ts adds it, except for secrets).
 */

/** One variable's outcome. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** A parser of one variable; `optional` marks a field whose key may be absent. */
export interface Field<T, Optional extends boolean = false> {
  parse(raw: string | undefined): Parsed<T>;
  readonly optional: Optional;
  /** Unset is allowed: the value is `undefined`. */
  orUnset(): Field<T | undefined, true>;
  /** Unset gives `value`. */
  withDefault(value: T): Field<T, false>;
  /** A further test of a parsed value. */
  check(test: (value: T) => boolean, message: string): Field<T, Optional>;
}

function field<T>(convert: (text: string) => Parsed<T>): Field<T> {
  const make = <U, O extends boolean>(
    parse: (raw: string | undefined) => Parsed<U>,
    optional: O,
  ): Field<U, O> => ({
    parse,
    optional,
    orUnset: () =>
      make<U | undefined, true>(
        (raw) => raw === undefined ? { ok: true, value: undefined } : parse(raw),
        true,
      ),
    withDefault: (value: U) =>
      make<U, false>((raw) => raw === undefined ? { ok: true, value } : parse(raw), false),
    check: (test: (value: U) => boolean, message: string) =>
      make<U, O>((raw) => {
        const r = parse(raw);
        return !r.ok || r.value === undefined || test(r.value) ? r : { ok: false, message };
      }, optional),
  });
  return make<T, false>(
    (raw) => raw === undefined ? { ok: false, message: "required" } : convert(raw.trim()),
    false,
  );
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (message: string): Parsed<never> => ({ ok: false, message });

/** Any text (trimmed), of at least `min` characters. */
export function text(
  { min = 0, max = Infinity, message }: { min?: number; max?: number; message?: string } = {},
): Field<string> {
  return field((v) =>
    v.length < min
      ? fail(message ?? (min === 1 ? "must not be empty" : `must have at least ${min} characters`))
      : v.length > max
      ? fail(message ?? `must have at most ${max} characters`)
      : ok(v)
  );
}

/** A whole number from `min` to `max`. */
export function int(min: number, max: number): Field<number> {
  return field((v) => {
    if (!/^\d+$/.test(v)) return fail("must be a whole number");
    const n = Number(v);
    if (n < min) return fail(`must be at least ${min}`);
    if (n > max) return fail(`must be at most ${max}`);
    return ok(n);
  });
}

/** An `http://` or `https://` URL. */
export function httpUrl(): Field<string> {
  return field((v) =>
    /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v)
      ? ok(v)
      : fail("must be an http:// or https:// URL")
  );
}

/** One of `values`. */
export function oneOf<const V extends string>(values: readonly V[]): Field<V> {
  return field((v) =>
    (values as readonly string[]).includes(v)
      ? ok(v as V)
      : fail(`expected one of ${values.join(", ")}`)
  );
}

/** `true`/`1` or `false`/`0`. */
export function bool(): Field<boolean> {
  return field((v) =>
    v === "true" || v === "1"
      ? ok(true)
      : v === "false" || v === "0"
      ? ok(false)
      : fail("expected one of true, false, 1, 0")
  );
}

/** A comma-separated list (items trimmed, empty ones dropped), each passing `item`. */
export function list(item: (v: string) => boolean = () => true, message = ""): Field<string[]> {
  return field((v) => {
    const items = v.split(",").map((s) => s.trim()).filter(Boolean);
    return items.every(item) ? ok(items) : fail(message);
  });
}

/** The object type a record of fields parses to (optional fields as optional keys). */
export type Fields = Record<string, Field<unknown, boolean>>;
export type Output<F extends Fields> =
  & { -readonly [K in keyof F as F[K]["optional"] extends true ? never : K]: Value<F[K]> }
  & { -readonly [K in keyof F as F[K]["optional"] extends true ? K : never]?: Value<F[K]> };
type Value<F> = F extends Field<infer T, boolean> ? T : never;

/** A problem with one variable: its name and the message. */
export interface Problem {
  name: string;
  message: string;
}

/**
 * Parses every field of `fields` from `env` (empty strings count as unset); the problems of
 * all fields, or the object. `crossChecks` runs only when every field parsed.
 */
export function parseFields<F extends Fields>(
  fields: F,
  env: Record<string, string | undefined>,
  crossChecks?: (c: Output<F>, problem: (name: keyof F & string, message: string) => void) => void,
): { ok: true; value: Output<F> } | { ok: false; problems: Problem[] } {
  const problems: Problem[] = [];
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(fields)) {
    const raw = env[name];
    const r = f.parse(raw === undefined || raw.trim() === "" ? undefined : raw);
    if (!r.ok) problems.push({ name, message: r.message });
    else if (r.value !== undefined) out[name] = r.value;
  }
  if (!problems.length && crossChecks) {
    crossChecks(out as Output<F>, (name, message) => problems.push({ name, message }));
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: out as Output<F> };
}
