/**
 * Splitting a reply longer than a channel's `maxTextChars` into several messages.
 *
 * Lengths are UTF-16 code units (JavaScript `length`, what Telegram and Discord count). Each
 * part ends at the last line break of its window when that break lies in the window's second
 * half, else at the last whitespace, else at the last line break anywhere, else it is cut hard
 * (never inside a surrogate pair). The break character stays at the end of its part, so the
 * parts joined give the text back exactly.
 */
import { WardenError } from '../../core/index.ts';

/** The smallest `maxChars` accepted (a surrogate pair plus room to break). */
export const MIN_SPLIT_CHARS = 16;

/**
 * `text` in parts of at most `maxChars` code units each; `[text]` when it fits (also `['']`).
 *
 * @throws WardenError INVALID_PARAMS when `maxChars` is not an integer ≥ {@link MIN_SPLIT_CHARS}.
 */
export function splitText(text: string, maxChars: number): string[] {
  if (!Number.isSafeInteger(maxChars) || maxChars < MIN_SPLIT_CHARS) {
    throw new WardenError(
      'INVALID_PARAMS',
      `splitText: maxChars: expected an integer ≥ ${MIN_SPLIT_CHARS} (got ${maxChars})`,
      { details: { where: 'splitText', path: 'maxChars' } },
    );
  }
  const parts: string[] = [];
  let rest = text;
  while (rest.length > maxChars) {
    const cut = breakPoint(rest.slice(0, maxChars), maxChars);
    parts.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  parts.push(rest);
  return parts;
}

/** Length of the next part, 1..window.length (the window is exactly `maxChars` long). */
function breakPoint(window: string, maxChars: number): number {
  const half = Math.floor(maxChars / 2);
  const line = window.lastIndexOf('\n');
  if (line >= half) return line + 1;
  const space = lastWhitespace(window);
  if (space > 0) return space + 1;
  if (line > 0) return line + 1;
  // A hard cut; a high surrogate at the end would be split from its low half.
  const last = window.charCodeAt(window.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? window.length - 1 : window.length;
}

function lastWhitespace(window: string): number {
  for (let i = window.length - 1; i > 0; i--) {
    if (/\s/.test(window[i]!)) return i;
  }
  return -1;
}
