/**
 * Secrets at rest (a report source's API token, a callback's signing secret): AES-256-GCM
 * through WebCrypto, each sealed value naming the key that sealed it, so keys rotate without
 * rewriting every row at once.
 *
 * Invariants:
 * - A sealed value is `v1.<keyId>.<iv>.<ciphertext>` (base64url); the 96-bit IV is random
 *   per value.
 * - A value is bound to its context (e.g. `source:<tenant>:<id>`) as additional data: a
 *   ciphertext copied to another row does not open there.
 * - New values are sealed with the first key; any listed key opens. A value sealed with a
 *   key no longer listed fails with `SecretError("UNKNOWN_KEY")`, never with garbage.
 * - Plaintext never appears in errors.
 */

/** Why a secret could not be sealed or opened. */
export type SecretErrorCode = "BAD_KEYS" | "UNKNOWN_KEY" | "MALFORMED" | "TAMPERED";

export class SecretError extends Error {
  override readonly name = "SecretError";
  constructor(readonly code: SecretErrorCode, message: string) {
    super(message);
  }
}

/** A key as configured: an id and 32 random bytes. */
export interface SecretKey {
  id: string;
  bytes: Uint8Array;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * Keys from configuration text: `id:base64key[,id:base64key...]`, the first sealing new
 * values. Throws {@link SecretError} `BAD_KEYS` naming the problem (never the key).
 */
export function parseKeys(text: string): SecretKey[] {
  const keys = text.split(",").map((s) => s.trim()).filter(Boolean).map((entry, i) => {
    const at = entry.indexOf(":");
    const id = entry.slice(0, at);
    if (at < 0 || !KEY_ID.test(id)) {
      throw new SecretError(
        "BAD_KEYS",
        `key ${i + 1} must be written id:base64 (id: A-Z a-z 0-9 _ -)`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(entry.slice(at + 1));
    } catch {
      throw new SecretError("BAD_KEYS", `key ${id} is not base64`);
    }
    if (bytes.length !== 32) {
      throw new SecretError("BAD_KEYS", `key ${id} must be 32 bytes, got ${bytes.length}`);
    }
    return { id, bytes };
  });
  if (keys.length === 0) throw new SecretError("BAD_KEYS", "no key given");
  if (new Set(keys.map((k) => k.id)).size !== keys.length) {
    throw new SecretError("BAD_KEYS", "key ids must be distinct");
  }
  return keys;
}

/** A fresh key in the configuration form (`id:base64`). */
export function generateKeyText(id = `k${Date.now().toString(36)}`): string {
  return `${id}:${toBase64(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/**
 * The embedded default: the key in `<dataDir>/secret.key`, made (mode 0600) on first use.
 * Keep the file with the data directory: values sealed with it cannot be opened without it.
 */
export async function localKeys(dataDir: string): Promise<SecretKey[]> {
  const path = `${dataDir}/secret.key`;
  try {
    return parseKeys(await Deno.readTextFile(path));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(dataDir, { recursive: true });
  const text = generateKeyText("local");
  // Written whole under another name, then linked into place: `path` never shows a half-written
  // key, and the link fails if another process made it first.
  const partial = `${path}.${crypto.randomUUID()}`;
  await Deno.writeTextFile(partial, text + "\n", { createNew: true, mode: 0o600 });
  try {
    await Deno.link(partial, path);
  } catch (err) {
    // Another process made it first: use theirs.
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    return parseKeys(await Deno.readTextFile(path));
  } finally {
    await Deno.remove(partial).catch(() => {});
  }
  return parseKeys(text);
}

/** Seals and opens secrets with a key ring; see the module invariants. */
export class SecretBox {
  readonly #keys: Map<string, Promise<CryptoKey>>;
  readonly #current: string;

  constructor(keys: readonly SecretKey[]) {
    if (keys.length === 0) throw new SecretError("BAD_KEYS", "no key given");
    this.#current = keys[0]!.id;
    this.#keys = new Map(keys.map((k) => [
      k.id,
      crypto.subtle.importKey("raw", new Uint8Array(k.bytes), "AES-GCM", false, [
        "encrypt",
        "decrypt",
      ]),
    ]));
  }

  /** The id of the key that seals new values. */
  get currentKeyId(): string {
    return this.#current;
  }

  async seal(plaintext: string, context: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const key = await this.#keys.get(this.#current)!;
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(context) },
      key,
      encoder.encode(plaintext),
    );
    return `v1.${this.#current}.${toBase64Url(iv)}.${toBase64Url(new Uint8Array(sealed))}`;
  }

  async open(sealed: string, context: string): Promise<string> {
    const parts = sealed.split(".");
    if (parts.length !== 4 || parts[0] !== "v1") {
      throw new SecretError("MALFORMED", "not a sealed secret");
    }
    const key = this.#keys.get(parts[1]!);
    if (!key) {
      throw new SecretError("UNKNOWN_KEY", `sealed with key ${parts[1]}, which is not configured`);
    }
    let iv: Uint8Array, data: Uint8Array;
    try {
      iv = fromBase64Url(parts[2]!);
      data = fromBase64Url(parts[3]!);
    } catch {
      throw new SecretError("MALFORMED", "not a sealed secret");
    }
    if (iv.length !== 12) throw new SecretError("MALFORMED", "not a sealed secret");
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: new Uint8Array(iv), additionalData: encoder.encode(context) },
        await key,
        new Uint8Array(data),
      );
      return new TextDecoder().decode(plain);
    } catch {
      throw new SecretError("TAMPERED", "the secret does not open in this context");
    }
  }

  /** Whether `sealed` was sealed with a key other than the current one (rotate it). */
  isStale(sealed: string): boolean {
    return sealed.split(".")[1] !== this.#current;
  }

  /** `sealed` opened and sealed again with the current key. */
  async reseal(sealed: string, context: string): Promise<string> {
    return this.isStale(sealed)
      ? await this.seal(await this.open(sealed, context), context)
      : sealed;
  }
}

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text.trim()), (c) => c.charCodeAt(0));
}

function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  return fromBase64(text.replaceAll("-", "+").replaceAll("_", "/"));
}
