/**
 * Python's text semantics where the NOA kit's output depends on them (it is written in Python;
 * its behaviour is the contract, reference/noa-kit-and-kgents.md A.3): `str.splitlines()`,
 * `str.strip()` and `\s` (Unicode whitespace as Python defines it, which is not JavaScript's),
 * `os.path.join`, and `datetime.isoformat()` timestamps.
 */

/**
 * Python's whitespace (`str.isspace()`, and `\s` in a `str` pattern): JavaScript's `\s` adds
 * U+FEFF and lacks U+001C–U+001F and U+0085.
 */
export const PY_WHITESPACE =
  '\\t\\n\\v\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const LINE_BREAK = /\r\n|[\n\r\v\f\u001c\u001d\u001e\u0085\u2028\u2029]/u;
const LEADING = new RegExp(`^[${PY_WHITESPACE}]+`, 'u');
const TRAILING = new RegExp(`[${PY_WHITESPACE}]+$`, 'u');

/** `str.splitlines()`: every Python line boundary, no trailing empty line. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(LINE_BREAK);
  // A final line break ends the last line; it does not start an empty one.
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** `str.strip()` with no argument. */
export function strip(text: string): string {
  return text.replace(LEADING, '').replace(TRAILING, '');
}

/** `os.path.join(a, *parts)` on POSIX: no normalisation (`./runs` stays `./runs`). */
export function joinPath(first: string, ...parts: string[]): string {
  let path = first;
  for (const part of parts) {
    if (part.startsWith('/')) path = part;
    else if (path === '' || path.endsWith('/')) path += part;
    else path += `/${part}`;
  }
  return path;
}

/** `os.path.dirname`: everything before the last `/` (trailing slashes of the head kept off). */
export function dirName(path: string): string {
  const i = path.lastIndexOf('/') + 1;
  const head = path.slice(0, i);
  return head !== '' && head !== '/'.repeat(head.length) ? head.replace(/\/+$/, '') : head;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * `datetime.utcnow().isoformat() + "Z"` from microseconds since the epoch, always with six
 * fractional digits (the kit drops them when they are all zero; Warden never does, and reads
 * both: reference A.8 #14).
 */
export function isoMicros(epochMicros: number): string {
  const ms = Math.floor(epochMicros / 1000);
  const d = new Date(ms);
  const micros = ((epochMicros % 1_000_000) + 1_000_000) % 1_000_000;
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `.${pad(Math.floor(micros), 6)}Z`
  );
}

/** `%Y%m%d_%H%M%SZ` in UTC: the kit's run directory and evidence timestamps. */
export function compactStamp(epochMs: number): string {
  const d = new Date(epochMs);
  return (
    `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
    `_${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`
  );
}

/**
 * `json.dump(value, indent=2, ensure_ascii=False)`: for JSON values made of strings, numbers,
 * arrays and objects this is exactly `JSON.stringify(value, null, 2)` (same separators, the
 * same escapes: `\\" \\\\ \\b \\f \\n \\r \\t`, other controls as lower-case `\\u00xx`, everything
 * else raw), no final newline.
 */
export function pythonJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
