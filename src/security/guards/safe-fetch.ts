/**
 * SSRF-guarded HTTP client (DESIGN.md §8). One hop of {@link guardedFetch}:
 *
 *   1. {@link checkUrlSyntax}: http(s) only, no userinfo, a host, port 1-65535.
 *   2. The host's addresses: an IP literal as is (no DNS); `localhost` and `*.localhost` as
 *      127.0.0.1 and ::1 (RFC 6761, never asked of DNS); any other name from `resolve`.
 *   3. {@link checkAddresses}: every address is classified; one blocked address blocks the host.
 *   4. Connect to the first checked address and no other: `node:http(s)` `request` gets a
 *      `lookup` that answers that address, so no second DNS query happens and a rebinding
 *      server cannot switch the target between check and connect. Host header, TLS SNI and
 *      certificate check still use the URL's host name. `agent: false`: a pooled socket could
 *      be reused by a later call whose allow list differs. The socket's peer is compared with
 *      the checked address once the response arrives.
 *   5. A 301/302/303/307/308 with `Location` is a new hop: its URL goes through 1-4 again,
 *      and `checkRedirect` (the caller's policy) sees it first. 301/302/303 become GET without
 *      a body (HEAD stays HEAD); 307/308 keep method and body. Credentials (`authorization`,
 *      `cookie`, `proxy-authorization`) are dropped when the redirect leaves the origin.
 *
 * Limits: `timeoutMs` covers the whole call (DNS, every hop, the body); `maxBytes` the body of
 * the final response (a larger declared `content-length` fails before reading). Overruns are
 * TOOL_ERROR (the tool failed, the target was not forbidden); guard refusals are GUARD_BLOCKED;
 * the caller's `signal` gives CANCELED. Bodies are not decompressed (`accept-encoding:
 * identity` is sent unless the caller sets one) and are decoded as UTF-8.
 */
import { lookup as systemLookup } from 'node:dns/promises';
import { type IncomingMessage, request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';

import { z } from 'zod';

import { checkParams, isWardenError, param, WardenError } from '../../core/index.ts';
import { type AddressClass, classifyAddress, parseAllowList } from './address-ranges.ts';
import { checkAddresses, checkUrlSyntax, displayUrl, ssrfBlocked, urlHost } from './ssrf.ts';

/** Resolves a host name to all of its addresses (both families). */
export type HostResolver = (
  hostname: string,
) => Promise<ReadonlyArray<{ readonly address: string; readonly family: number }>>;

export interface SafeFetchRequest {
  readonly url: string;
  /** GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS. @default 'GET' */
  readonly method?: string;
  /** Request headers; `host`, `connection`, `upgrade`, `content-length` and `transfer-encoding` are set by the client and refused here. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
}

export interface SafeFetchOptions {
  /** CIDRs (or single addresses) that may be reached although their range is blocked. @default [] */
  readonly allow?: readonly string[];
  /** @default `node:dns/promises` `lookup(hostname, {all: true, order: 'verbatim'})` */
  readonly resolve?: HostResolver;
  /** Redirects followed before GUARD_BLOCKED. @default 5 */
  readonly maxRedirects?: number;
  /** Largest response body, in bytes; larger is TOOL_ERROR. @default 1 MiB */
  readonly maxBytes?: number;
  /** Deadline for the whole call, redirects included; TOOL_ERROR when it passes. @default 10_000 */
  readonly timeoutMs?: number;
  /** Called with every redirect target before it is contacted; throwing aborts the call with that error. */
  readonly checkRedirect?: (url: URL) => Promise<void> | void;
}

export interface GuardedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  /** The body decoded as UTF-8. */
  readonly body: string;
  /** Body size in bytes, as received. */
  readonly bytes: number;
  /** The final URL (after redirects). */
  readonly url: string;
  /** The IP address the final response came from. */
  readonly address: string;
  /** Every redirect target followed, in order. */
  readonly redirects: readonly string[];
}

export const DEFAULT_MAX_REDIRECTS = 5;
export const DEFAULT_MAX_BYTES = 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const CLIENT_HEADERS = new Set([
  'host',
  'connection',
  'upgrade',
  'content-length',
  'transfer-encoding',
]);
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];
const BODY_HEADERS = ['content-type', 'content-encoding', 'content-language', 'content-location'];
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The default resolver: the system's (getaddrinfo), every address of both families. */
export const systemResolver: HostResolver = (hostname) =>
  systemLookup(hostname, { all: true, order: 'verbatim' });

const fetchArgs = z.object({
  request: param.options(
    {
      url: param.string('a URL string'),
      method: param.oneOf(METHODS).optional(),
      headers: param
        .is<Record<string, string>>(
          'an object of header name → string value (no CR, LF or NUL in values)',
          (v) =>
            v !== null &&
            typeof v === 'object' &&
            !Array.isArray(v) &&
            Object.entries(v).every(
              ([k, x]) => TOKEN.test(k) && typeof x === 'string' && !/[\r\n\0]/.test(x),
            ),
        )
        .optional(),
      body: param
        .is<string | Uint8Array>(
          'a string or Uint8Array',
          (v) => typeof v === 'string' || v instanceof Uint8Array,
        )
        .optional(),
    },
    'a request { url, method?, headers?, body? }',
  ),
  options: param.options(
    {
      allow: param
        .is<string[]>(
          'an array of CIDR strings',
          (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'),
        )
        .optional(),
      resolve: param
        .fn<HostResolver>('a function (hostname) => Promise<{address, family}[]>')
        .optional(),
      maxRedirects: param.int(0, 20).optional(),
      maxBytes: param.int(1, 1024 * 1024 * 1024).optional(),
      timeoutMs: param.int(1, 600_000).optional(),
      checkRedirect: param.fn<(url: URL) => void>('a function (url: URL) => void').optional(),
    },
    'options { allow?, resolve?, maxRedirects?, maxBytes?, timeoutMs?, checkRedirect? }',
  ),
  signal: param.is<AbortSignal>('an AbortSignal', (v) => v instanceof AbortSignal).optional(),
});

/**
 * Fetches `request.url` through the SSRF guard (see the module comment for each step).
 *
 * @throws WardenError GUARD_BLOCKED (`details: {guard: 'ssrf', reasons, url}`) for a refused
 *   URL, address, redirect target or a redirect chain longer than `maxRedirects`; TOOL_ERROR
 *   for DNS failure, connection errors, a body over `maxBytes` or the `timeoutMs` deadline;
 *   CANCELED when `signal` aborts; INVALID_PARAMS for bad arguments; whatever `checkRedirect`
 *   throws (a non-WardenError is wrapped as GUARD_BLOCKED).
 */
export async function guardedFetch(
  request: SafeFetchRequest,
  options: SafeFetchOptions = {},
  signal?: AbortSignal,
): Promise<GuardedResponse> {
  checkParams('guardedFetch', fetchArgs, { request, options, signal });
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    const lower = name.toLowerCase();
    if (CLIENT_HEADERS.has(lower)) {
      throw new WardenError(
        'INVALID_PARAMS',
        `guardedFetch: request.headers.${name}: set by the client from the URL and body; remove it`,
        { details: { where: 'guardedFetch', header: lower } },
      );
    }
    headers[lower] = value;
  }
  headers['accept-encoding'] ??= 'identity';
  const allow = parseAllowList(options.allow ?? [], 'options.allow');
  const resolve = options.resolve ?? systemResolver;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const abort = signal === undefined ? deadline : AbortSignal.any([signal, deadline]);

  let url = checkUrlSyntax(request.url);
  let method: string = request.method ?? 'GET';
  let body = request.body;
  const redirects: string[] = [];
  try {
    for (;;) {
      abort.throwIfAborted();
      const addresses = await hostAddresses(url, resolve, abort);
      const target = checkAddresses(url, addresses, allow)[0]!;
      const response = await send(url, target, method, headers, body, abort);
      const location = response.headers.location;
      if (REDIRECTS.has(response.statusCode ?? 0) && location !== undefined) {
        response.destroy();
        if (redirects.length >= maxRedirects) {
          throw ssrfBlocked(url, [`more than ${maxRedirects} redirects (maxRedirects)`], {
            redirects,
          });
        }
        const next = checkUrlSyntax(location, url);
        await callCheckRedirect(options.checkRedirect, next);
        redirects.push(next.href);
        if (response.statusCode !== 307 && response.statusCode !== 308) {
          if (method !== 'HEAD') method = 'GET';
          body = undefined;
          for (const h of BODY_HEADERS) delete headers[h];
        }
        if (next.origin !== url.origin) for (const h of CREDENTIAL_HEADERS) delete headers[h];
        url = next;
        continue;
      }
      const bytes = await readBody(response, url, maxBytes, abort);
      return {
        status: response.statusCode ?? 0,
        headers: plainHeaders(response),
        body: bytes.toString('utf8'),
        bytes: bytes.length,
        url: url.href,
        address: target.address,
        redirects,
      };
    }
  } catch (error) {
    if (isWardenError(error)) throw error;
    if (signal?.aborted === true) {
      throw new WardenError(
        'CANCELED',
        `guardedFetch: ${displayUrl(url)} was canceled by the caller`,
        {
          cause: error,
          details: { url: displayUrl(url) },
        },
      );
    }
    if (deadline.aborted) {
      throw new WardenError(
        'TOOL_ERROR',
        `guardedFetch: ${method} ${displayUrl(url)} did not finish within timeoutMs (${timeoutMs} ms, redirects included); raise timeoutMs or try later`,
        {
          cause: error,
          details: { url: displayUrl(url), limit: 'timeoutMs', timeout_ms: timeoutMs },
        },
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new WardenError(
      'TOOL_ERROR',
      `guardedFetch: ${method} ${displayUrl(url)} failed: ${message}; check the URL and that the server is up`,
      { cause: error, details: { url: displayUrl(url) } },
    );
  }
}

/** The addresses to check for a URL's host (see step 2 of the module comment). */
async function hostAddresses(
  url: URL,
  resolve: HostResolver,
  signal: AbortSignal,
): Promise<string[]> {
  const host = urlHost(url);
  if (host.kind === 'ip') return [host.address];
  const name = host.name.endsWith('.') ? host.name.slice(0, -1) : host.name;
  if (name === 'localhost' || name.endsWith('.localhost')) return ['127.0.0.1', '::1'];
  let answers: unknown;
  try {
    answers = await raceAbort(resolve(name), signal);
  } catch (error) {
    if (signal.aborted) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new WardenError(
      'TOOL_ERROR',
      `guardedFetch: could not resolve ${name} (${message}); check the host name`,
      { cause: error, details: { url: displayUrl(url), host: name } },
    );
  }
  if (
    !Array.isArray(answers) ||
    !answers.every((a) => typeof (a as { address?: unknown })?.address === 'string')
  ) {
    throw ssrfBlocked(url, ['the resolver did not return a list of {address, family}']);
  }
  return (answers as { address: string }[]).map((a) => a.address);
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function callCheckRedirect(
  check: SafeFetchOptions['checkRedirect'],
  next: URL,
): Promise<void> {
  if (check === undefined) return;
  try {
    await check(new URL(next.href));
  } catch (error) {
    if (isWardenError(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new WardenError(
      'GUARD_BLOCKED',
      `SSRF guard blocked the redirect to ${displayUrl(next)}: checkRedirect refused it (${message})`,
      { cause: error, details: { guard: 'ssrf', reasons: [message], url: displayUrl(next) } },
    );
  }
}

/** One HTTP exchange with the checked address; resolves with the response head. */
function send(
  url: URL,
  target: AddressClass,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const host = urlHost(url);
  const family = target.family === 6 ? 6 : 4;
  // Answers every lookup with the checked address: the one place the connection target is set.
  const lookup: LookupFunction = (_hostname, lookupOptions, callback) => {
    if (lookupOptions.all === true) callback(null, [{ address: target.address, family }]);
    else callback(null, target.address, family);
  };
  const https = url.protocol === 'https:';
  const hostname = host.kind === 'ip' ? target.address : host.name.replace(/\.$/, '') || host.name;
  const requestOptions: RequestOptions & { servername?: string } = {
    protocol: url.protocol,
    host: hostname,
    port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
    path: `${url.pathname}${url.search}`,
    method,
    headers: { ...headers, host: url.host },
    agent: false,
    lookup,
    signal,
  };
  // SNI carries names only (RFC 6066); certificates are checked against `host` either way.
  if (https && host.kind === 'name') requestOptions.servername = hostname;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(requestOptions, (res) => {
      const peer = res.socket?.remoteAddress;
      if (peer !== undefined && classifyAddress(peer).address !== target.address) {
        res.destroy();
        reject(ssrfBlocked(url, [`connected to ${peer}, not the checked ${target.address}`]));
        return;
      }
      resolve(res);
    });
    req.once('error', reject);
    req.end(body);
  });
}

async function readBody(
  response: IncomingMessage,
  url: URL,
  maxBytes: number,
  signal: AbortSignal,
): Promise<Buffer> {
  const tooLarge = (what: string) => {
    response.destroy();
    return new WardenError(
      'TOOL_ERROR',
      `guardedFetch: the response from ${displayUrl(url)} is larger than maxBytes (${what} > ${maxBytes} bytes); raise maxBytes or fetch less`,
      { details: { url: displayUrl(url), limit: 'maxBytes', max_bytes: maxBytes } },
    );
  };
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes)
    throw tooLarge(`content-length ${declared}`);
  const onAbort = () => response.destroy(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw tooLarge(`at least ${total}`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, total);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function plainHeaders(response: IncomingMessage): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) out[name] = value;
  }
  return out;
}
