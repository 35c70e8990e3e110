/**
 * Console sessions: the cookie holds a random 256-bit id only; the session (the key it acts as,
 * by id, and its CSRF token) is a row of the app's database (db/console_sessions.ts), so every
 * instance resumes it and a logout on one ends it on all. Each request reads the session with its
 * key's state: a key revoked after login ends its sessions at once.
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
  /** The key the session acts as; its state is read again on each request. */
  apiKeyId: string;
}

export interface SessionOptions {
  /** Absolute lifetime of a session. @default 12 h */
  ttlMs?: number;
  /** A session unused this long ends. @default 1 h */
  idleMs?: number;
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
  readonly #ttl: number;
  readonly #idle: number;
  readonly #now: () => number;

  constructor(readonly tenants: TenantStore, options: SessionOptions = {}) {
    this.#ttl = options.ttlMs ?? 12 * 3600_000;
    this.#idle = options.idleMs ?? 3600_000;
    this.#now = options.now ?? Date.now;
  }

  /** Starts a session for a key already authenticated, and sets its cookie. */
  async start(c: Context, principal: Principal): Promise<Session> {
    const now = this.#now();
    const session: Session = {
      id: randomToken(),
      csrf: randomToken(),
      expiresAt: now + this.#ttl,
      idleUntil: now + this.#idle,
      apiKeyId: principal.apiKeyId,
    };
    await this.tenants.consoleSessions.create(session.id, { ...session, now });
    setCookie(c, SESSION_COOKIE, session.id, cookieOptions(c, Math.floor(this.#ttl / 1000)));
    return session;
  }

  /** The request's live session and its key's principal, or null. */
  async resume(c: Context): Promise<{ session: Session; principal: Principal } | null> {
    const id = getCookie(c, SESSION_COOKIE);
    if (!id || id.length > 100) return null;
    const now = this.#now();
    const stored = await this.tenants.consoleSessions.resume(id, now);
    if (!stored) return null;
    const session: Session = {
      id,
      csrf: stored.csrf,
      expiresAt: stored.expiresAt,
      idleUntil: stored.idleUntil,
      apiKeyId: stored.principal.apiKeyId,
    };
    // The idle expiry moves at most once a minute: a busy page costs no write per request.
    if (now + this.#idle - session.idleUntil > 60_000) {
      session.idleUntil = now + this.#idle;
      await this.tenants.consoleSessions.touch(id, session.idleUntil);
    }
    return { session, principal: stored.principal };
  }

  /** Ends the session on every instance and clears its cookie. */
  async end(c: Context, session: Session | null): Promise<void> {
    if (session) await this.tenants.consoleSessions.end(session.id);
    deleteCookie(c, SESSION_COOKIE, { path: "/console" });
  }
}
