/**
 * The textual forms a secret takes when something encodes it on the way to a log, an event or
 * a stored payload. The redactor searches for every form, so a secret that a tool or library
 * wrapped in base64, hex, a URL or a JSON string is still found.
 *
 * Base64 needs care: the base64 of a blob that contains the secret depends on where in the blob
 * the secret starts. Base64 maps each 3 bytes to 4 characters, so only the secret's start offset
 * modulo 3 (its alignment) matters. For each alignment `a` (0, 1, 2) we encode `a` zero bytes
 * followed by the secret and keep only the characters whose 6 bits all come from the secret:
 * from character ⌈8a/6⌉ up to (not including) ⌊8(a+n)/6⌋ for an n-byte secret. Those characters
 * appear unchanged in the base64 of *any* blob holding the secret at that alignment, whatever
 * comes before or after it (a `user:password` Basic credential, a JSON document, a PEM body).
 * The one or two boundary characters each side mix secret bits with neighbouring bytes; they
 * are left in place, so a redacted blob still shows at most 4 bits of the secret at each end.
 * Wrapped base64 (MIME, PEM: a newline every 64 or 76 characters) is not recognised.
 */
import { Buffer } from 'node:buffer';

/** A secret's name: an upper-case letter, then upper-case letters, digits and `_`; 64 at most. */
export const SECRET_NAME_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * Secrets shorter than this are not searched for: their forms (a 3-character base64 core, a
 * 4-character word) would also match ordinary text and redact it. The secret store refuses them.
 */
export const MIN_SECRET_CHARS = 6;

/** How a form was derived from the secret. */
export type SecretFormKind = 'plain' | 'base64' | 'base64url' | 'hex' | 'url' | 'json';

export interface SecretForm {
  readonly kind: SecretFormKind;
  readonly text: string;
}

/**
 * The base64 characters that encode `bytes` at alignments 0, 1 and 2 (see the module comment),
 * standard alphabet, no padding. An entry is empty when the secret is too short to fill one
 * whole character at that alignment.
 */
export function base64Cores(bytes: Uint8Array): [string, string, string] {
  const n = bytes.length;
  const core = (a: number): string => {
    const padded = Buffer.alloc(a + n);
    padded.set(bytes, a);
    const text = padded.toString('base64');
    return text.slice(Math.ceil((8 * a) / 6), Math.floor((8 * (a + n)) / 6));
  };
  return [core(0), core(1), core(2)];
}

/** `encodeURIComponent` plus the characters RFC 3986 reserves that it leaves alone. */
function strictUriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** JSON string body with every non-ASCII code unit as `\uXXXX` (Python's `json.dumps` default). */
function asciiJson(text: string): string {
  return JSON.stringify(text)
    .slice(1, -1)
    .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Every distinct form of `value`, the value itself first: base64 cores (standard and URL-safe,
 * 3 alignments), hex of the UTF-8 bytes (lower and upper case), URL-encodings (upper- and
 * lower-case `%XX`, `+` for space, RFC 3986 strict) and JSON string escapes (standard, ASCII-only,
 * `\/`, and escaped twice for a JSON string inside a JSON string). Forms shorter than
 * {@link MIN_SECRET_CHARS} are dropped.
 */
export function secretForms(value: string): SecretForm[] {
  const bytes = Buffer.from(value, 'utf8');
  const out: SecretForm[] = [];
  const seen = new Set<string>();
  const add = (kind: SecretFormKind, text: string): void => {
    if (text.length < MIN_SECRET_CHARS || seen.has(text)) return;
    seen.add(text);
    out.push({ kind, text });
  };
  add('plain', value);
  for (const core of base64Cores(bytes)) {
    add('base64', core);
    add('base64url', core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  const hex = bytes.toString('hex');
  add('hex', hex);
  add('hex', hex.toUpperCase());
  const uri = encodeURIComponent(value);
  add('url', uri);
  add(
    'url',
    uri.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  );
  add('url', uri.replace(/%20/g, '+'));
  add('url', strictUriEncode(value));
  const json = JSON.stringify(value).slice(1, -1);
  add('json', json);
  add('json', asciiJson(value));
  add('json', json.replace(/\//g, '\\/'));
  add('json', JSON.stringify(json).slice(1, -1));
  return out;
}
