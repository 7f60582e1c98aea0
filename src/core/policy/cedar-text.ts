/**
 * Writing Cedar source text safely: string literals, `like` patterns and entity references.
 * Everything a policy file or a request supplies goes through these, so a quote, a backslash,
 * a line break or a `*` in a name can never change the meaning of a generated policy.
 */

/** Cedar's `like` wildcard, as a pattern part. */
export const WILDCARD: unique symbol = Symbol('cedar.like.wildcard');
export type LikePart = string | typeof WILDCARD;

/** True when `text` holds a lone UTF-16 surrogate (not representable in Cedar's UTF-8). */
export function hasLoneSurrogate(text: string): boolean {
  return /\p{Cs}/u.test(text);
}

function escapeChars(text: string, star: boolean): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === '*' && star) out += '\\*';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0) || code === 0x2028)
      out += `\\u{${code.toString(16)}}`;
    else if (code === 0x2029) out += '\\u{2029}';
    else out += ch;
  }
  return out;
}

/** A Cedar string literal (quoted) holding exactly `text`. */
export function cedarString(text: string): string {
  return `"${escapeChars(text, false)}"`;
}

/**
 * A Cedar `like` pattern (quoted): string parts match literally (a `*` in them is escaped),
 * {@link WILDCARD} parts match any run of characters.
 */
export function cedarLike(parts: readonly LikePart[]): string {
  let out = '';
  for (const part of parts) out += part === WILDCARD ? '*' : escapeChars(part, true);
  return `"${out}"`;
}

/** `Type::"id"` with the id escaped. */
export function cedarEntity(type: string, id: string): string {
  return `${type}::${cedarString(id)}`;
}
