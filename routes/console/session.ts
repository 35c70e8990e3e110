/**
 * Console sessions: the cookie holds a random 256-bit id only; the session (its key, for
 * re-authentication, and its CSRF token) stays in this process's memory and expires. A key
 * revoked after login stops the session within the tenant store's authentication cache time,
 * since every request authenticates the key again.
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Principal, TenantStore } from "../../db/tenants.ts";

export const SESSION_COOKIE = "troupe_console";
export const LOGIN_COOKIE = "troupe_console_login";

export interface Session {
  id: string;
  csrf: string;
  expiresAt: number;
  idleUntil: number;
  /** Kept server-side only, to authenticate each request again (revocation, scope). */
  key: string;
}

export interface SessionOptions {
  /** Absolute lifetime of a session. @default 12 h */
  ttlMs?: number;
  /** A session unused this long ends. @default 1 h */
  idleMs?: number;
  /** Sessions kept at most; the oldest go first. @default 10 000 */
  maxSessions?: number;
  now?: () => number;
}

export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/** Compares two tokens in time independent of where they differ. */
export function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const isHttps = (c: Context) =>
  new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";

export function cookieOptions(c: Context, maxAgeSeconds?: number) {
  return {
    path: "/console",
    httpOnly: true,
    sameSite: "Strict" as const,
    secure: isHttps(c),
    ...(maxAgeSeconds !== undefined ? { maxAge: maxAgeSeconds } : {}),
  };
}

export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #ttl: number;
  readonly #idle: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(readonly tenants: TenantStore, options: SessionOptions = {}) {
    this.#ttl = options.ttlMs ?? 12 * 3600_000;
    this.#idle = options.idleMs ?? 3600_000;
    this.#max = options.maxSessions ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Starts a session for a key already authenticated, and sets its cookie. */
  start(c: Context, key: string): Session {
    const now = this.#now();
    const session: Session = {
      id: randomToken(),
      csrf: randomToken(),
      expiresAt: now + this.#ttl,
      idleUntil: now + this.#idle,
      key,
    };
    this.#sessions.set(session.id, session);
    while (this.#sessions.size > this.#max) {
      this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    setCookie(c, SESSION_COOKIE, session.id, cookieOptions(c, Math.floor(this.#ttl / 1000)));
    return session;
  }

  /** The request's live session and its key's principal, or null. */
  async resume(c: Context): Promise<{ session: Session; principal: Principal } | null> {
    const id = getCookie(c, SESSION_COOKIE);
    if (!id) return null;
    const session = this.#sessions.get(id);
    const now = this.#now();
    if (!session || session.expiresAt <= now || session.idleUntil <= now) {
      if (session) this.#sessions.delete(id);
      return null;
    }
    const principal = await this.tenants.authenticate(session.key);
    if (!principal) {
      this.#sessions.delete(id);
      return null;
    }
    session.idleUntil = now + this.#idle;
    return { session, principal };
  }

  end(c: Context, session: Session | null): void {
    if (session) this.#sessions.delete(session.id);
    deleteCookie(c, SESSION_COOKIE, { path: "/console" });
  }
}
