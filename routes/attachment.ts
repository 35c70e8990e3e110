/**
 * The `Content-Disposition` of a download named after a user's dataset (RFC 6266).
 *
 * A dataset is usually named after its file (`sales.csv`), so the file extension it came with is
 * replaced by the export's, not doubled. The name is the user's text: a quoted `filename` carries
 * an ASCII stand-in (clients that ignore `filename*` still get a safe name) and `filename*`
 * carries the real name in UTF-8 (RFC 8187).
 */

/** Extensions a dataset's name may carry from its upload, replaced by the export's. */
const DATA_EXTENSION = /\.(csv|tsv|tab|txt|json|ndjson|jsonl)(\.gz)?$/i;
/** Bytes RFC 8187's `attr-char` allows unencoded, besides letters and digits. */
const ATTR_CHAR_EXTRA = new Set("!#$&+-.^_`|~");
const MAX_NAME_CHARS = 120;

/**
 * The file name an export of `name` gets: its data extension (if any) replaced by `extension`;
 * path separators and control characters replaced, so a client never sees a path.
 */
export function exportFileName(name: string, extension: string): string {
  const base = [...name.replace(DATA_EXTENSION, "")]
    .map((ch) => (/[\p{Cc}\p{Cf}/\\]/u.test(ch) ? "_" : ch))
    .slice(0, MAX_NAME_CHARS)
    .join("")
    .trim()
    .replace(/^\.+/, "");
  return `${base || "dataset"}.${extension}`;
}

/**
 * `attachment; filename="..."; filename*=UTF-8''...` for a download of `name` as `extension`.
 */
export function attachmentHeader(name: string, extension: string): string {
  const file = exportFileName(name, extension);
  const ascii = [...file]
    .map((ch) => (/^[\x20-\x7e]$/.test(ch) && ch !== '"' && ch !== "\\" ? ch : "_"))
    .join("");
  let encoded = "";
  for (const byte of new TextEncoder().encode(file)) {
    const ch = String.fromCharCode(byte);
    encoded += /^[A-Za-z0-9]$/.test(ch) || ATTR_CHAR_EXTRA.has(ch)
      ? ch
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return ascii === file
    ? `attachment; filename="${ascii}"`
    : `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
