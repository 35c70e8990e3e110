/**
 * Outbound requests to tenant-supplied URLs (a report source's `baseUrl`, a completion
 * callback) are server-side requests made on a tenant's behalf. This module decides whether
 * a URL may be called and fetches it hop by hop under that rule.
 *
 * Invariants:
 * - Only `http:` and `https:`; with `requireHttps` (production) only `https:`. No user or
 *   password in the URL.
 * - Every address the host resolves to (A and AAAA) must be public: loopback, private,
 *   link-local, carrier-grade NAT, unspecified, multicast, reserved, documentation ranges and
 *   IPv4 mapped or translated into IPv6 are refused, unless the allowlist names the host or
 *   the address (exactly, or a CIDR range that contains it).
 * - Redirects are followed by hand, each hop checked again, at most `maxRedirects`.
 * - The check and the connection resolve the name separately: a name whose answers change
 *   between the two (DNS rebinding) is not caught here. Production deployments that need that
 *   guarantee put an egress proxy in front.
 */

/** Why a URL was refused. */
export type EgressRefusal =
  | "BAD_URL"
  | "SCHEME_NOT_ALLOWED"
  | "CREDENTIALS_IN_URL"
  | "ADDRESS_NOT_ALLOWED"
  | "UNRESOLVABLE"
  | "TOO_MANY_REDIRECTS";

/** A refused outbound URL; `code` says why. Not retryable: the URL itself is wrong. */
export class EgressError extends Error {
  override readonly name = "EgressError";
  constructor(readonly code: EgressRefusal, message: string) {
    super(message);
  }
}

/** Resolves a host name to its addresses (A and AAAA). */
export type Resolver = (host: string) => Promise<string[]>;

/** Options of {@link EgressPolicy}. */
export interface EgressOptions {
  /** Refuse plain `http:`. @default false */
  requireHttps?: boolean;
  /**
   * Hosts, addresses or CIDR ranges allowed although private, e.g. `["127.0.0.1",
   * "10.1.0.0/16", "usage.internal"]`. @default []
   */
  allow?: readonly string[];
  /** Name resolution. @default A and AAAA through `Deno.resolveDns` */
  resolve?: Resolver;
  /** Redirect hops followed by {@link EgressPolicy.fetch}. @default 3 */
  maxRedirects?: number;
}

/** The outbound rule, applied by {@link EgressPolicy.check} and {@link EgressPolicy.fetch}. */
export class EgressPolicy {
  readonly #requireHttps: boolean;
  readonly #hosts: Set<string>;
  readonly #ranges: Cidr[];
  readonly #resolve: Resolver;
  readonly #maxRedirects: number;

  constructor(
    { requireHttps = false, allow = [], resolve = resolveDns, maxRedirects = 3 }: EgressOptions =
      {},
  ) {
    this.#requireHttps = requireHttps;
    this.#resolve = resolve;
    this.#maxRedirects = maxRedirects;
    this.#hosts = new Set();
    this.#ranges = [];
    for (const entry of allow) {
      const range = parseCidr(entry);
      if (range) this.#ranges.push(range);
      else this.#hosts.add(entry.toLowerCase());
    }
  }

  /** The parsed URL when it may be called; throws {@link EgressError} otherwise. */
  async check(target: string | URL): Promise<URL> {
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new EgressError("BAD_URL", "not a valid URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new EgressError("SCHEME_NOT_ALLOWED", `${url.protocol} URLs are not allowed`);
    }
    if (url.protocol === "http:" && this.#requireHttps) {
      throw new EgressError("SCHEME_NOT_ALLOWED", "only https:// URLs are allowed");
    }
    if (url.username || url.password) {
      throw new EgressError("CREDENTIALS_IN_URL", "the URL must not carry a user or password");
    }
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (this.#hosts.has(host)) return url;
    const literal = parseAddress(host);
    let addresses: string[];
    if (literal) addresses = [host];
    else if (host === "localhost" || host.endsWith(".localhost")) addresses = ["127.0.0.1"];
    else {
      try {
        addresses = await this.#resolve(host);
      } catch {
        addresses = [];
      }
      if (addresses.length === 0) {
        throw new EgressError("UNRESOLVABLE", `the host ${host} does not resolve`);
      }
    }
    for (const address of addresses) {
      const bytes = parseAddress(address);
      if (!bytes) throw new EgressError("UNRESOLVABLE", `the host ${host} resolved to ${address}`);
      if (this.#ranges.some((r) => r.contains(bytes)) || this.#hosts.has(address)) continue;
      const why = nonPublic(bytes);
      if (why) {
        throw new EgressError(
          "ADDRESS_NOT_ALLOWED",
          `the host ${host} is a ${why} address (${address}); only public addresses may be called`,
        );
      }
    }
    return url;
  }

  /**
   * `fetch` with every hop checked. Redirects (301, 302, 303, 307, 308) are followed up to
   * `maxRedirects`; a 303, or a 301/302 after a POST, continues as a GET without a body.
   */
  async fetch(target: string | URL, init: RequestInit = {}): Promise<Response> {
    let url = await this.check(target);
    let current: RequestInit = { ...init, redirect: "manual" };
    for (let hop = 0;; hop++) {
      const res = await fetch(url, current);
      const location = res.headers.get("location");
      if (![301, 302, 303, 307, 308].includes(res.status) || location === null) return res;
      await res.body?.cancel();
      if (hop >= this.#maxRedirects) {
        throw new EgressError("TOO_MANY_REDIRECTS", `more than ${this.#maxRedirects} redirects`);
      }
      url = await this.check(new URL(location, url));
      const method = (current.method ?? "GET").toUpperCase();
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === "POST")) {
        const { body: _body, ...rest } = current;
        current = { ...rest, method: "GET" };
      }
    }
  }
}

async function resolveDns(host: string): Promise<string[]> {
  const [v4, v6] = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  return [
    ...(v4.status === "fulfilled" ? v4.value : []),
    ...(v6.status === "fulfilled" ? v6.value : []),
  ];
}

// ---------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------

/** An address as 16 bytes (IPv4 as IPv4-mapped IPv6), or null when `text` is not one. */
export function parseAddress(text: string): Uint8Array | null {
  const v4 = parseV4(text);
  if (v4) return mapped(v4);
  return parseV6(text);
}

function parseV4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (const [i, p] of parts.entries()) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

function mapped(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

function parseV6(text: string): Uint8Array | null {
  if (!text.includes(":")) return null;
  let body = text.split("%")[0]!;
  const out = new Uint8Array(16);
  // A trailing dotted IPv4 part (::ffff:1.2.3.4) stands for the last two groups.
  const dotted = body.match(/:(\d+\.\d+\.\d+\.\d+)$/);
  let tail: Uint8Array | null = null;
  if (dotted) {
    tail = parseV4(dotted[1]!);
    if (!tail) return null;
    body = body.slice(0, -dotted[1]!.length) + "0:0";
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const group = (s: string) => s === "" ? [] : s.split(":");
  const head = group(halves[0]!), rest = halves.length === 2 ? group(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  for (const [i, g] of groups.entries()) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

interface Cidr {
  contains(address: Uint8Array): boolean;
}

/** `a.b.c.d/n`, `x::/n`, or a bare address (a /32 or /128); null when not a range. */
function parseCidr(text: string): Cidr | null {
  const [addr, bitsText] = text.split("/");
  const base = parseAddress(addr!);
  if (!base) return null;
  const v4 = parseV4(addr!) !== null;
  const bits = bitsText === undefined ? 128 : Number(bitsText) + (v4 ? 96 : 0);
  if (!Number.isInteger(bits) || bits < 0 || bits > 128) return null;
  return { contains: (a) => samePrefix(a, base, bits) };
}

function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

/** Ranges that are not the public internet, with the word used in refusals. */
const NON_PUBLIC: [string, string][] = [
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "carrier-grade NAT"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved"],
  ["192.0.2.0/24", "documentation"],
  ["192.88.99.0/24", "reserved"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["64:ff9b::/96", "IPv4-translated"],
  ["64:ff9b:1::/48", "IPv4-translated"],
  ["100::/64", "discard"],
  ["2001:db8::/32", "documentation"],
  ["2002::/16", "6to4"],
  ["fc00::/7", "private"],
  ["fe80::/10", "link-local"],
  ["ff00::/8", "multicast"],
];
const NON_PUBLIC_RANGES = NON_PUBLIC.map(([cidr, why]) => ({ range: parseCidr(cidr)!, why }));
const IPV4_COMPATIBLE = parseCidr("::/96")!;

/** The kind of non-public address `a` is, or null when it is public. */
export function nonPublic(a: Uint8Array): string | null {
  for (const { range, why } of NON_PUBLIC_RANGES) if (range.contains(a)) return why;
  // The deprecated IPv4-compatible form (::a.b.c.d) is judged as never public.
  if (IPV4_COMPATIBLE.contains(a)) return "reserved";
  return null;
}
