/**
 * Credentials the redactor recognises by their shape, without being told their value: bearer
 * tokens, provider API keys, AWS access key ids, JWTs, PEM private keys, Warden API tokens and
 * passwords in URLs or `key=value` text. Each match keeps its harmless prefix (`Bearer `, the
 * URL up to the password, a Warden token's id) and loses the rest to `[REDACTED]`.
 *
 * Every pattern must stay linear on any input, because the redactor runs over tool outputs an
 * attacker may shape: a pattern starts only at the start of a run of its own characters (a
 * one-character lookbehind, so `sk-sk-sk-…` is tried once, not at every `sk-`), every open
 * quantifier is followed by nothing that could make it backtrack far, and the PEM block ends
 * at its END line *or* at the end of the text (a truncated key is still a key, and a missing
 * END line costs one scan, not one per BEGIN).
 */

/** One shape: `keep` (regex source) stays in the output, `body` (regex source) is redacted. */
export interface TokenPattern {
  readonly name: string;
  readonly keep: string;
  readonly body: string;
}

/** A case-insensitive regex source for a plain word: `ab` → `[Aa][Bb]`. */
function anyCase(word: string): string {
  return word.replace(/[a-z]/g, (c) => `[${c.toUpperCase()}${c}]`).replace(/-/g, '[-_]');
}

/**
 * Keys whose string values are credentials whatever they contain (compared ignoring case, `-`
 * and `_` alike). `redact` replaces such values in objects, and the `key=value` and JSON
 * patterns below use the same list.
 */
export const SENSITIVE_KEYS: readonly string[] = [
  'password',
  'passwd',
  'secret',
  'client-secret',
  'api-key',
  'apikey',
  'x-api-key',
  'access-token',
  'refresh-token',
  'auth-token',
  'token',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'private-key',
];

/** Normalised form of a key for {@link SENSITIVE_KEYS} lookups. */
export function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/_/g, '-');
}

const KEY_ALTERNATION = `(?:${[...SENSITIVE_KEYS]
  .sort((a, b) => b.length - a.length)
  .map(anyCase)
  .join('|')})`;

/** The shapes, tried in this order at each position, after the secrets' own forms are replaced. */
export const TOKEN_PATTERNS: readonly TokenPattern[] = [
  {
    name: 'pem-private-key',
    keep: '',
    body: '-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY-----[\\s\\S]*?(?:-----END[A-Z0-9 ]{0,40} PRIVATE KEY-----|$)',
  },
  {
    name: 'bearer',
    keep: '(?<![A-Za-z0-9_])[Bb]earer[ \\t]{1,16}',
    body: '[A-Za-z0-9\\-._~+/]{8,}=*',
  },
  {
    name: 'basic-auth-header',
    keep: `(?<![A-Za-z0-9_])${anyCase('authorization')}["']?[ \\t]*[:=][ \\t]*["']?Basic[ \\t]{1,16}`,
    body: '[A-Za-z0-9+/]{4,}={0,2}',
  },
  {
    name: 'warden-api-token',
    keep: '(?<![A-Za-z0-9_])wdn_tok_[0-9a-f]{32}_',
    body: '[A-Za-z0-9_-]{43}',
  },
  {
    name: 'api-key-sk',
    keep: '',
    body: '(?<![A-Za-z0-9_-])(?:sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,})',
  },
  {
    name: 'github-token',
    keep: '',
    body: '(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})',
  },
  { name: 'slack-token', keep: '', body: '(?<![A-Za-z0-9_-])xox[abposr]-[A-Za-z0-9-]{10,}' },
  {
    name: 'aws-access-key-id',
    keep: '',
    body: '(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])',
  },
  {
    name: 'jwt',
    keep: '',
    body: '(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\\.eyJ[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]*',
  },
  {
    // scheme://user:PASSWORD@host
    name: 'url-password',
    keep: '(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\\s:@/?#]{0,256}:',
    body: '[^\\s@/?#]{1,256}(?=@)',
  },
  {
    // ?password=… &token=… --password=… PASSWORD=…
    name: 'key-value',
    keep: `(?<![A-Za-z0-9])${KEY_ALTERNATION}=`,
    body: `[^&#\\s"'<>;,]+`,
  },
  {
    // "password": "…" in JSON text (a log line, a serialized payload)
    name: 'json-key',
    keep: `"${KEY_ALTERNATION}"[ \\t]*:[ \\t]*"`,
    // the unrolled-loop form of (?:[^"\\\n]|\\.)+ : same language, no group per character
    body: '(?=[^"\\n])[^"\\\\\\n]*(?:\\\\.[^"\\\\\\n]*)*',
  },
];
