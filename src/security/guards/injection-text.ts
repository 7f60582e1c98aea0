/**
 * Text preparation for prompt-injection scoring: what is hidden in the raw text (zero-width
 * characters, bidi controls, Unicode tag characters, HTML comments), and the normalised forms
 * the patterns run on (NFKC, invisible characters removed, common Cyrillic and Greek look-alikes
 * folded to Latin, lower case, markdown emphasis removed, blanks collapsed). Every pass is a
 * single linear scan.
 */

/** Zero-width and other invisible format characters (not bidi controls). */
const INVISIBLE = /[\u00ad\u180e\u200b-\u200d\u2060-\u2064\ufeff]/g;
/** Bidi embeddings, overrides and isolates (LRM/RLM are left alone: ordinary RTL text has them). */
const BIDI = /[\u202a-\u202e\u2066-\u2069]/g;
/** Unicode tag characters (U+E0000–U+E007F): invisible, and they map one-to-one onto ASCII. */
const TAGS = /[\u{e0000}-\u{e007f}]/gu;

const HOMOGLYPHS: Record<string, string> = {
  а: 'a',
  в: 'b',
  с: 'c',
  е: 'e',
  ё: 'e',
  һ: 'h',
  і: 'i',
  ї: 'i',
  ј: 'j',
  к: 'k',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  ѕ: 's',
  т: 't',
  у: 'y',
  х: 'x',
  ԁ: 'd',
  ԛ: 'q',
  ԝ: 'w',
  ɡ: 'g',
  ı: 'i',
  А: 'a',
  В: 'b',
  С: 'c',
  Е: 'e',
  Н: 'h',
  І: 'i',
  Ј: 'j',
  К: 'k',
  М: 'm',
  О: 'o',
  Р: 'p',
  Ѕ: 's',
  Т: 't',
  У: 'y',
  Х: 'x',
  α: 'a',
  ε: 'e',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
  ϲ: 'c',
  Α: 'a',
  Β: 'b',
  Ε: 'e',
  Ζ: 'z',
  Η: 'h',
  Ι: 'i',
  Κ: 'k',
  Μ: 'm',
  Ν: 'n',
  Ο: 'o',
  Ρ: 'p',
  Τ: 't',
  Υ: 'y',
  Χ: 'x',
};
const HOMOGLYPH_RE = new RegExp(`[${Object.keys(HOMOGLYPHS).join('')}]`, 'g');

export interface PreparedText {
  /** NFKC, invisible/bidi/tag characters removed (case kept: base64 needs it). */
  readonly clean: string;
  /** `clean` with look-alikes folded and lower-cased: for delimiters, URLs and markup. */
  readonly folded: string;
  /** `folded` without markdown emphasis (`*_~\``) and with blanks collapsed: for phrases. */
  readonly plain: string;
  readonly invisible: number;
  readonly bidi: number;
  /** ASCII smuggled in Unicode tag characters ('' when none). */
  readonly tagText: string;
  /** Bodies of `<!-- … -->` comments (each at most 4 KiB, at most 64 of them). */
  readonly comments: readonly string[];
}

export function prepareText(raw: string): PreparedText {
  let invisible = 0;
  let bidi = 0;
  let tagText = '';
  const stripped = raw
    .replace(TAGS, (c) => {
      const code = c.codePointAt(0)! - 0xe0000;
      if (code >= 0x20 && code < 0x7f) tagText += String.fromCharCode(code);
      return '';
    })
    .replace(INVISIBLE, () => {
      invisible++;
      return '';
    })
    .replace(BIDI, () => {
      bidi++;
      return '';
    });
  const clean = stripped.normalize('NFKC');
  const folded = clean.replace(HOMOGLYPH_RE, (c) => HOMOGLYPHS[c] ?? c).toLowerCase();
  // Emphasis marks go; an underscore inside a word stays (tool names like transfer_funds).
  const plain = folded
    .replace(/[*~`]+/g, '')
    .replace(/(^|[^a-z0-9])_+|_+(?=[^a-z0-9]|$)/g, '$1')
    .replace(/\s+/g, ' ');
  return { clean, folded, plain, invisible, bidi, tagText, comments: htmlComments(folded) };
}

function htmlComments(text: string): string[] {
  const out: string[] = [];
  let from = 0;
  while (out.length < 64) {
    const open = text.indexOf('<!--', from);
    if (open === -1) break;
    const close = text.indexOf('-->', open + 4);
    const end = close === -1 ? text.length : close;
    out.push(text.slice(open + 4, Math.min(end, open + 4 + 4096)));
    from = end + 3;
  }
  return out;
}

/** ROT13 of ASCII letters. */
export function rot13(text: string): string {
  return text.replace(/[a-z]/gi, (c) => {
    const base = c <= 'Z' ? 65 : 97;
    return String.fromCharCode(((c.charCodeAt(0) - base + 13) % 26) + base);
  });
}

/**
 * Base64 runs of ≥ 24 characters that decode to mostly printable text (at most 16 runs of at
 * most 8 KiB each): candidates for hidden instructions.
 */
export function base64Texts(clean: string): string[] {
  const out: string[] = [];
  for (const m of clean.matchAll(/[A-Za-z0-9+/]{24,}={0,2}/g)) {
    if (out.length >= 16) break;
    const run = m[0].slice(0, 8192);
    if (!/[0-9+/]/.test(run) && !/[A-Z].*[a-z]|[a-z].*[A-Z]/.test(run)) continue;
    const text = Buffer.from(run, 'base64').toString('utf8');
    let printable = 0;
    for (const ch of text) if (/[\x20-\x7e\n\t]/.test(ch)) printable++;
    if (text.length >= 12 && printable / text.length >= 0.9) out.push(text);
  }
  return out;
}
