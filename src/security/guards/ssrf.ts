/**
 * SSRF guard, URL and address checks (DESIGN.md §8). {@link checkUrlSyntax} accepts only
 * `http:`/`https:` URLs with a host, a port from 1 to 65535 and no userinfo at all;
 * {@link checkAddresses} blocks a host when any of its addresses is in a blocked range. The
 * network side (DNS, connecting to the checked address, redirects, limits) is in
 * `safe-fetch.ts`.
 *
 * Host normalisation is the WHATWG URL parser's, the one browsers and `fetch` use: it turns
 * `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` and full-width digits into `127.0.0.1` and
 * compresses IPv6, so every later check sees one canonical host.
 */
import ipaddr from 'ipaddr.js';

import { WardenError } from '../../core/index.ts';
import { type AddressClass, type AllowList, classifyAddress } from './address-ranges.ts';

/** A URL host: an IP literal (brackets removed) or a DNS name. */
export type UrlHost =
  | { readonly kind: 'ip'; readonly address: string }
  | { readonly kind: 'name'; readonly name: string };

const ALLOWED_PROTOCOLS = new Set(['http:', 'https:']);

/** The URL as it may appear in errors: userinfo masked, at most 2,000 characters. */
export function displayUrl(raw: string | URL): string {
  let text = typeof raw === 'string' ? raw : raw.href;
  try {
    const url = new URL(text);
    if (url.username !== '' || url.password !== '') {
      url.username = '***';
      url.password = '';
    }
    text = url.href;
  } catch {
    // Unparseable: shown as given (shortened), it has no host to protect anyway.
  }
  return text.length > 2_000 ? `${text.slice(0, 2_000)}…` : text;
}

/**
 * GUARD_BLOCKED with `details: {guard: 'ssrf', reasons, url}`. The message names the reasons
 * and what to do.
 */
export function ssrfBlocked(
  url: string | URL,
  reasons: readonly string[],
  extra: Record<string, unknown> = {},
): WardenError {
  const shown = displayUrl(url);
  return new WardenError(
    'GUARD_BLOCKED',
    `SSRF guard blocked ${shown}: ${reasons.join('; ')}. Use an http(s) URL to a public host; if this internal address is intended, add its CIDR to the guard's allow list`,
    { details: { guard: 'ssrf', reasons: [...reasons], url: shown, ...extra } },
  );
}

/**
 * Parses `raw` (resolved against `base` when given, as a redirect `Location` is) and checks
 * its syntax: `http:` or `https:` only; no userinfo, not even an empty one (`http://@host/`,
 * `http://allowed.test@127.0.0.1/`); a non-empty host of valid DNS labels or an IP literal;
 * port 1-65535. Returns the normalised URL. Addresses are not checked here (that needs DNS):
 * see {@link checkAddresses}.
 *
 * @throws WardenError GUARD_BLOCKED with `details.reasons`.
 */
export function checkUrlSyntax(raw: string, base?: string | URL): URL {
  if (typeof raw !== 'string') throw ssrfBlocked(String(raw), ['the URL is not a string']);
  let url: URL;
  try {
    url = base === undefined ? new URL(raw) : new URL(raw, base);
  } catch {
    throw ssrfBlocked(raw, ['the URL cannot be parsed']);
  }
  const reasons: string[] = [];
  if (!ALLOWED_PROTOCOLS.has(url.protocol)) {
    reasons.push(`scheme '${url.protocol}' is not allowed (only http: and https:)`);
  }
  if (url.username !== '' || url.password !== '' || rawAuthorityHasAt(raw)) {
    reasons.push('the URL has userinfo (an @ before the host); credentials in URLs are refused');
  }
  if (ALLOWED_PROTOCOLS.has(url.protocol)) {
    const hostProblem = checkHost(url.hostname);
    if (hostProblem !== undefined) reasons.push(hostProblem);
    if (url.port === '0') reasons.push('port 0 is not allowed (1-65535)');
  }
  if (reasons.length > 0) throw ssrfBlocked(url, reasons);
  return url;
}

/** The host of a checked URL: an IP literal (brackets removed) or a DNS name. */
export function urlHost(url: URL): UrlHost {
  const host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) return { kind: 'ip', address: host.slice(1, -1) };
  // WHATWG serialises every IPv4 host as a dotted quad, so this catches all numeric forms.
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return { kind: 'ip', address: host };
  return { kind: 'name', name: host };
}

/**
 * Classifies every address of a host and throws when any is blocked: a name answering one
 * public and one private address is blocked, since the connection could go to either and DNS
 * can be made to answer differently next time.
 *
 * @throws WardenError GUARD_BLOCKED with `details.addresses` (each address and its range).
 */
export function checkAddresses(
  url: URL,
  addresses: readonly string[],
  allow: AllowList,
): AddressClass[] {
  if (addresses.length === 0) throw ssrfBlocked(url, ['the host resolved to no address']);
  const classes = addresses.map((a) => classifyAddress(a, allow));
  const blocked = classes.filter((c) => c.blocked);
  if (blocked.length > 0) {
    const host = urlHost(url);
    const reasons = blocked.map((c) => {
      const via = c.embedded === undefined ? '' : ` (${c.embedded.via} of ${c.embedded.ipv4})`;
      const name = host.kind === 'name' ? `${host.name} resolves to ` : '';
      return `${name}${c.address}${via}, which is ${c.range}`;
    });
    throw ssrfBlocked(url, reasons, {
      addresses: classes.map((c) => ({ address: c.address, range: c.range, blocked: c.blocked })),
    });
  }
  return classes;
}

/**
 * The WHATWG parser drops an empty userinfo (`http://@127.0.0.1/` becomes
 * `http://127.0.0.1/`), so look for an `@` in the authority of the raw text too. Tabs and
 * newlines are removed first, as the parser does; `\` ends the authority like `/` (http and
 * https are special schemes).
 */
function rawAuthorityHasAt(raw: string): boolean {
  const text = raw.replace(/[\t\n\r]/g, '').replace(/^[\u0000-\u0020]+/, '');
  // After `http:`/`https:` the parser skips any number of slashes (even none); a
  // scheme-relative reference (a redirect's `//host/`) needs two.
  const match =
    /^https?:[/\\]*([^/\\?#]*)/i.exec(text) ??
    /^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?[/\\]{2,}([^/\\?#]*)/.exec(text);
  return match?.[1]?.includes('@') ?? false;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A problem with a URL host, or undefined. The parser has lower-cased and IDNA-encoded it. */
function checkHost(hostname: string): string | undefined {
  if (hostname === '') return 'the URL has no host';
  if (hostname.startsWith('[')) return undefined; // an IPv6 literal the parser accepted
  const name = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  if (name.length > 253) return 'the host name is longer than 253 characters';
  if (!name.split('.').every((label) => LABEL.test(label))) {
    return `the host '${hostname}' is not a valid DNS name`;
  }
  return undefined;
}
