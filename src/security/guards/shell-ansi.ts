/**
 * Decodes the body of `$'…'` starting at `start` (just after the opening quote): C escapes
 * (`\n`, `\x72`, `\u00e9`, octal, `\cX`). Obfuscated commands use it (`$'\x72\x6d' -rf /`).
 * Returns the text and the index just past the closing quote, or null when it is unterminated.
 */
export function decodeAnsiC(s: string, start: number): { value: string; end: number } | null {
  let pos = start;
  let out = '';
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    e: '\x1b',
    E: '\x1b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    "'": "'",
    '"': '"',
    '?': '?',
  };
  for (;;) {
    const c = s[pos];
    if (c === undefined) return null;
    if (c === "'") break;
    if (c !== '\\') {
      out += c;
      pos++;
      continue;
    }
    const e = s[pos + 1] ?? '';
    const hex = (len: number) => {
      const m = new RegExp(`[0-9a-fA-F]{1,${len}}`, 'y');
      m.lastIndex = pos + 2;
      const h = m.exec(s)?.[0] ?? '';
      pos += 2 + h.length;
      return h === '' ? '' : String.fromCodePoint(Math.min(parseInt(h, 16), 0x10ffff));
    };
    if (e in simple) {
      out += simple[e];
      pos += 2;
    } else if (e === 'x') out += hex(2);
    else if (e === 'u') out += hex(4);
    else if (e === 'U') out += hex(8);
    else if (e >= '0' && e <= '7') {
      const m = /[0-7]{1,3}/y;
      m.lastIndex = pos + 1;
      const o = m.exec(s)?.[0] ?? '0';
      out += String.fromCharCode(parseInt(o, 8) & 0xff);
      pos += 1 + o.length;
    } else if (e === 'c') {
      out += String.fromCharCode((s.charCodeAt(pos + 2) || 0) & 0x1f);
      pos += 3;
    } else {
      out += `\\${e}`;
      pos += 2;
    }
  }
  return { value: out, end: pos + 1 };
}
