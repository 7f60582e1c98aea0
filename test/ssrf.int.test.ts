/**
 * SSRF guard (src/security/guards) against real sockets and a local DNS server, no internet.
 *
 * Listeners share one port P on 127.0.0.2 (the allowed host: `allow: ['127.0.0.2/32']`),
 * 127.0.0.1, 127.0.0.3 and ::1 (traps). Every vector uses P where it names a local address,
 * so a guard that let it through would reach a trap (or the allowed host, which then answers
 * 200 and fails the test); each vector asserts GUARD_BLOCKED and that no trap saw a request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { getCACertificates, setDefaultCACertificates, type TLSSocket } from 'node:tls';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { isWardenError, WardenError } from '../src/core/index.ts';
import {
  DEFAULT_MAX_REDIRECTS,
  guardedFetch,
  type SafeFetchOptions,
} from '../src/security/guards/safe-fetch.ts';
import { startDnsServer, type TestDnsServer } from './helpers/dns-server.ts';
import { rejection } from './helpers/wait.ts';

interface Hit {
  readonly listener: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
}

const hits: Hit[] = [];
const TRAPS = ['127.0.0.1', '127.0.0.3', '::1'];
const trapHits = () => hits.filter((h) => TRAPS.includes(h.listener));

let port = 0;
let dns: TestDnsServer;
const servers: Server[] = [];

/** The allowed host's routes; traps answer 200 'trap' to anything. */
function allowedHandler(req: IncomingMessage, res: ServerResponse, body: string): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const parts = url.pathname.split('/');
  if (url.pathname === '/ok') {
    res.end('hello from the allowed host');
  } else if (url.pathname === '/echo') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, body, headers: req.headers }));
  } else if (url.pathname === '/redirect') {
    res.writeHead(Number(url.searchParams.get('status') ?? 302), {
      location: url.searchParams.get('to') ?? '/ok',
    });
    res.end();
  } else if (parts[1] === 'chain') {
    const n = Number(parts[2]);
    if (n > 0) res.writeHead(302, { location: `/chain/${n - 1}` }).end();
    else res.end('end of chain');
  } else if (url.pathname === '/big') {
    const n = Number(url.searchParams.get('n'));
    if (url.searchParams.has('declare')) res.setHeader('content-length', n);
    // Chunks, so an undeclared body arrives in pieces and the limit is hit while reading.
    for (let sent = 0; sent < n; sent += 1000) res.write('x'.repeat(Math.min(1000, n - sent)));
    res.end();
  } else if (url.pathname === '/slow') {
    res.writeHead(200); // then never ends: the guard's timeout must
    res.write('partial');
  } else {
    res.writeHead(404).end('not found');
  }
}

async function listen(host: string, wanted: number): Promise<number> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      hits.push({
        listener: host,
        method: req.method ?? '',
        path: req.url ?? '',
        host: req.headers.host ?? '',
      });
      if (host === '127.0.0.2') allowedHandler(req, res, body);
      else res.end('trap');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(wanted, host, () => resolve());
  });
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

async function closeServers(): Promise<void> {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
}

beforeAll(async () => {
  dns = await startDnsServer({
    'allowed.test': { A: ['127.0.0.2'] },
    'alias.test': { A: ['127.0.0.2'] },
    'loopback.test': { A: ['127.0.0.1'] },
    'private10.test': { A: ['10.0.0.1'] },
    'private172.test': { A: ['172.16.5.4'] },
    'private192.test': { A: ['192.168.1.1'] },
    'metadata.test': { A: ['169.254.169.254'] },
    'cgnat.test': { A: ['100.64.0.1'] },
    'alibaba.test': { A: ['100.100.100.200'] },
    'zero.test': { A: ['0.0.0.0'] },
    'v6loop.test': { AAAA: ['::1'] },
    'mapped.test': { AAAA: ['::ffff:127.0.0.1'] },
    'ula.test': { AAAA: ['fd00::1'] },
    'linklocal6.test': { AAAA: ['fe80::1'] },
    'ec2v6.test': { AAAA: ['fd00:ec2::254'] },
    'mixed.test': { A: ['93.184.216.34', '10.0.0.1'] },
    'mixedfamily.test': { A: ['127.0.0.2'], AAAA: ['::1'] },
    'trap3.test': { A: ['127.0.0.3'] },
  });
  // One port on every listener, so a vector that got through would land on a trap.
  for (let attempt = 0; ; attempt++) {
    try {
      port = await listen('127.0.0.2', 0);
      for (const host of TRAPS) await listen(host, port);
      break;
    } catch (error) {
      await closeServers();
      if (attempt === 5) throw error;
    }
  }
});

afterAll(async () => {
  await closeServers();
  await dns?.close();
});

afterEach(() => {
  hits.length = 0;
});

const ALLOW = ['127.0.0.2/32'];
const options = (extra: SafeFetchOptions = {}): SafeFetchOptions => ({
  allow: ALLOW,
  resolve: (name) => dns.resolve(name),
  timeoutMs: 5_000,
  ...extra,
});

/** `{P}` in a vector is the shared port (also inside an encoded redirect target). */
const withPort = (text: string) =>
  text.replaceAll('{P}', String(port)).replace(/%(?:25)*7BP%(?:25)*7D/g, String(port));
/** A URL on the allowed host that redirects to `target`. */
const via = (target: string, status = 302) =>
  `http://allowed.test:{P}/redirect?status=${status}&to=${encodeURIComponent(target)}`;

interface Vector {
  readonly name: string;
  readonly url: string;
  readonly method?: 'GET' | 'POST';
}

const VECTORS: readonly Vector[] = [
  // IPv4 forms of 127.0.0.1 (the WHATWG parser normalises them all).
  { name: 'loopback dotted', url: 'http://127.0.0.1:{P}/' },
  { name: 'loopback decimal', url: 'http://2130706433:{P}/' },
  { name: 'loopback hex', url: 'http://0x7f000001:{P}/' },
  { name: 'loopback dotted hex', url: 'http://0x7f.0x0.0x0.0x1:{P}/' },
  { name: 'loopback dotted octal', url: 'http://0177.0.0.1:{P}/' },
  { name: 'loopback octal', url: 'http://017700000001:{P}/' },
  { name: 'loopback mixed hex short', url: 'http://0x7f.1:{P}/' },
  { name: 'loopback mixed octal/hex', url: 'http://0177.0x0.1:{P}/' },
  { name: 'loopback short two-part', url: 'http://127.1:{P}/' },
  { name: 'loopback short three-part', url: 'http://127.0.1:{P}/' },
  { name: 'loopback zero-padded', url: 'http://127.000.000.001:{P}/' },
  { name: 'loopback unicode digits', url: 'http://①②⑦.0.0.1:{P}/' },
  { name: 'loopback ideographic dots', url: 'http://127。0。0。1:{P}/' },
  { name: 'loopback other address', url: 'http://127.0.0.3:{P}/' },
  // Private, CGNAT and metadata.
  { name: '10/8 dotted', url: 'http://10.0.0.1/' },
  { name: '10/8 decimal', url: 'http://167772161/' },
  { name: '10/8 hex', url: 'http://0xa000001/' },
  { name: '10/8 octal', url: 'http://012.0.0.1/' },
  { name: '10/8 short', url: 'http://10.1/' },
  { name: '172.16/12', url: 'http://172.16.0.1/' },
  { name: '172.31 (top of 172.16/12)', url: 'http://172.31.255.254/' },
  { name: '192.168/16', url: 'http://192.168.0.1/' },
  { name: 'CGNAT 100.64/10', url: 'http://100.64.0.1/' },
  { name: 'metadata dotted', url: 'http://169.254.169.254/latest/meta-data/' },
  { name: 'metadata decimal', url: 'http://2852039166/latest/meta-data/' },
  { name: 'metadata hex', url: 'http://0xa9fea9fe/' },
  { name: 'metadata octal', url: 'http://0251.0376.0251.0376/' },
  { name: 'metadata short', url: 'http://169.254.43518/' },
  { name: 'metadata ECS', url: 'http://169.254.170.2/v2/credentials' },
  { name: 'metadata Alibaba', url: 'http://100.100.100.200/latest/meta-data/' },
  { name: 'link-local 169.254/16', url: 'http://169.254.1.1/' },
  { name: 'broadcast', url: 'http://255.255.255.255/' },
  { name: 'multicast', url: 'http://224.0.0.1/' },
  { name: 'reserved 240/4', url: 'http://240.0.0.1/' },
  { name: 'documentation TEST-NET-1', url: 'http://192.0.2.1/' },
  { name: 'benchmarking 198.18/15', url: 'http://198.18.0.1/' },
  // Unspecified (connecting to 0.0.0.0 reaches this host on Linux).
  { name: 'unspecified 0.0.0.0', url: 'http://0.0.0.0:{P}/' },
  { name: 'unspecified 0', url: 'http://0:{P}/' },
  { name: 'unspecified zero-padded', url: 'http://000.000.000.000:{P}/' },
  // IPv6 forms.
  { name: 'IPv6 loopback', url: 'http://[::1]:{P}/' },
  { name: 'IPv6 loopback uncompressed', url: 'http://[0:0:0:0:0:0:0:1]:{P}/' },
  { name: 'IPv6 unspecified', url: 'http://[::]:{P}/' },
  { name: 'IPv4-mapped dotted', url: 'http://[::ffff:127.0.0.1]:{P}/' },
  { name: 'IPv4-mapped hex', url: 'http://[::ffff:7f00:1]:{P}/' },
  { name: 'IPv4-mapped uncompressed', url: 'http://[0:0:0:0:0:ffff:127.0.0.1]:{P}/' },
  { name: 'IPv4-mapped metadata', url: 'http://[::ffff:169.254.169.254]/' },
  { name: 'IPv4-mapped other loopback', url: 'http://[::ffff:127.0.0.3]:{P}/' },
  { name: 'IPv4-compatible loopback', url: 'http://[::127.0.0.1]:{P}/' },
  { name: 'IPv4-translated loopback', url: 'http://[::ffff:0:127.0.0.1]:{P}/' },
  { name: 'NAT64 private', url: 'http://[64:ff9b::10.0.0.1]/' },
  { name: 'NAT64 metadata', url: 'http://[64:ff9b::a9fe:a9fe]/' },
  { name: 'NAT64 local-use prefix', url: 'http://[64:ff9b:1::1]/' },
  { name: '6to4 loopback', url: 'http://[2002:7f00:1::]/' },
  { name: '6to4 private', url: 'http://[2002:a00:1::1]/' },
  { name: 'Teredo with loopback client', url: 'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/' },
  { name: 'IPv6 link-local', url: 'http://[fe80::1]/' },
  { name: 'IPv6 unique-local fc00::', url: 'http://[fc00::1]/' },
  { name: 'IPv6 unique-local fd', url: 'http://[fd12:3456::1]/' },
  { name: 'IPv6 metadata AWS', url: 'http://[fd00:ec2::254]/latest/meta-data/' },
  { name: 'IPv6 multicast', url: 'http://[ff02::1]/' },
  { name: 'IPv6 site-local', url: 'http://[fec0::1]/' },
  { name: 'IPv6 documentation', url: 'http://[2001:db8::1]/' },
  // Names answered by the test DNS server.
  { name: 'name → 127.0.0.1', url: 'http://loopback.test:{P}/' },
  { name: 'name → 127.0.0.3', url: 'http://trap3.test:{P}/' },
  { name: 'name → 10.0.0.1', url: 'http://private10.test/' },
  { name: 'name → 172.16.5.4', url: 'http://private172.test/' },
  { name: 'name → 192.168.1.1', url: 'http://private192.test/' },
  { name: 'name → metadata', url: 'http://metadata.test/latest/meta-data/' },
  { name: 'name → CGNAT', url: 'http://cgnat.test/' },
  { name: 'name → Alibaba metadata', url: 'http://alibaba.test/' },
  { name: 'name → 0.0.0.0', url: 'http://zero.test:{P}/' },
  { name: 'name → ::1', url: 'http://v6loop.test:{P}/' },
  { name: 'name → ::ffff:127.0.0.1', url: 'http://mapped.test:{P}/' },
  { name: 'name → fd00::1', url: 'http://ula.test/' },
  { name: 'name → fe80::1', url: 'http://linklocal6.test/' },
  { name: 'name → fd00:ec2::254', url: 'http://ec2v6.test/' },
  { name: 'name → public + private', url: 'http://mixed.test/' },
  { name: 'name → allowed A + loopback AAAA', url: 'http://mixedfamily.test:{P}/' },
  { name: 'name with trailing dot and capitals', url: 'http://LOOPBACK.TEST.:{P}/' },
  { name: 'localhost', url: 'http://localhost:{P}/' },
  { name: 'sub.localhost', url: 'http://sub.localhost:{P}/' },
  // Redirects from the allowed host.
  { name: 'redirect → 127.0.0.3', url: via('http://127.0.0.3:{P}/') },
  { name: 'redirect → 127.0.0.1', url: via('http://127.0.0.1:{P}/') },
  { name: 'redirect → decimal loopback', url: via('http://2130706433:{P}/') },
  { name: 'redirect → [::1]', url: via('http://[::1]:{P}/') },
  { name: 'redirect → metadata', url: via('http://169.254.169.254/latest/meta-data/') },
  { name: 'redirect → name → loopback', url: via('http://loopback.test:{P}/') },
  { name: 'redirect → scheme-relative', url: via('//127.0.0.3:{P}/') },
  { name: 'redirect → file:', url: via('file:///etc/passwd') },
  { name: 'redirect → gopher:', url: via('gopher://127.0.0.1:{P}/_GET%20/') },
  { name: 'redirect → data:', url: via('data:text/plain,hello') },
  { name: 'redirect → userinfo trick', url: via('http://allowed.test@127.0.0.3:{P}/') },
  { name: 'redirect 307 POST → 127.0.0.3', url: via('http://127.0.0.3:{P}/', 307), method: 'POST' },
  { name: 'redirect 308 → 127.0.0.1', url: via('http://127.0.0.1:{P}/', 308) },
  { name: 'redirect 303 → 127.0.0.3', url: via('http://127.0.0.3:{P}/', 303) },
  { name: 'redirect → redirect → 127.0.0.3', url: via(via('http://127.0.0.3:{P}/')) },
  {
    name: `redirect chain longer than ${DEFAULT_MAX_REDIRECTS}`,
    url: `http://allowed.test:{P}/chain/${DEFAULT_MAX_REDIRECTS + 1}`,
  },
  // Schemes other than http(s).
  { name: 'file:', url: 'file:///etc/passwd' },
  { name: 'file: with host', url: 'file://localhost/etc/passwd' },
  { name: 'ftp:', url: 'ftp://127.0.0.1/' },
  { name: 'gopher:', url: 'gopher://127.0.0.1:{P}/_GET%20/' },
  { name: 'data:', url: 'data:text/plain;base64,aGVsbG8=' },
  { name: 'javascript:', url: 'javascript:alert(1)' },
  { name: 'dict:', url: 'dict://127.0.0.1:{P}/info' },
  { name: 'ldap:', url: 'ldap://127.0.0.1/' },
  { name: 'ws:', url: 'ws://allowed.test:{P}/' },
  { name: 'wss:', url: 'wss://allowed.test/' },
  { name: 'jar:', url: 'jar:http://allowed.test/!/' },
  { name: 'sftp:', url: 'sftp://127.0.0.1/' },
  { name: 'netdoc:', url: 'netdoc:///etc/passwd' },
  // Userinfo and parser-confusion tricks.
  { name: 'userinfo allowed@loopback', url: 'http://allowed.test@127.0.0.1:{P}/' },
  { name: 'userinfo with password', url: 'http://allowed.test:80@127.0.0.1:{P}/' },
  { name: 'userinfo on the allowed host', url: 'http://user:pass@allowed.test:{P}/ok' },
  { name: 'userinfo encoded slash', url: 'http://allowed.test%2F@127.0.0.1:{P}/' },
  { name: 'userinfo encoded @', url: 'http://allowed.test%40@127.0.0.1:{P}/' },
  { name: 'empty userinfo', url: 'http://@127.0.0.1:{P}/' },
  { name: 'empty user and password', url: 'http://:@127.0.0.1:{P}/' },
  { name: 'empty userinfo on allowed host', url: 'http://@allowed.test:{P}/ok' },
  { name: 'fragment @ trick', url: 'http://127.0.0.1:{P}#@allowed.test/' },
  { name: 'backslash @ trick', url: 'http://127.0.0.1:{P}\\@allowed.test/' },
  { name: 'space and @ (Orange Tsai)', url: 'http://allowed.test &@127.0.0.1:{P}# @allowed.test/' },
  { name: 'slash-backslash authority', url: 'http:/\\127.0.0.1:{P}/' },
  { name: 'no slashes after scheme', url: 'http:127.0.0.1:{P}/' },
  { name: 'tab inside scheme', url: 'ht\ttp://127.0.0.1:{P}/' },
  { name: 'leading control characters', url: '\u0001 http://127.0.0.1:{P}/' },
  { name: 'port 0', url: 'http://allowed.test:0/' },
  { name: 'encoded slash in port', url: 'http://127.0.0.1:{P}%2f@allowed.test/' },
];

describe('SSRF vectors', () => {
  it('has at least 60 distinct vectors', () => {
    expect(VECTORS.length).toBeGreaterThanOrEqual(60);
    expect(new Set(VECTORS.map((v) => v.url)).size).toBe(VECTORS.length);
    expect(new Set(VECTORS.map((v) => v.name)).size).toBe(VECTORS.length);
  });

  it.each(VECTORS)('blocks $name', async ({ url, method }) => {
    const raw = withPort(url);
    const error = await rejection(
      guardedFetch(
        { url: raw, method: method ?? 'GET', body: method === 'POST' ? 'x' : undefined },
        options(),
      ),
    );
    expect(error.code, error.message).toBe('GUARD_BLOCKED');
    expect(error.details?.guard).toBe('ssrf');
    expect((error.details?.reasons as string[]).length).toBeGreaterThan(0);
    expect(typeof error.details?.url).toBe('string');
    expect(trapHits()).toEqual([]);
  });
});

describe('DNS rebinding', () => {
  it('connects to the address it checked, not to what DNS answers next', async () => {
    dns.set('rebind.test', [{ A: ['127.0.0.2'] }, { A: ['127.0.0.3'] }]);
    const response = await guardedFetch({ url: `http://rebind.test:${port}/ok` }, options());
    expect(response.status).toBe(200);
    expect(response.body).toBe('hello from the allowed host');
    expect(response.address).toBe('127.0.0.2');
    expect(hits).toEqual([
      { listener: '127.0.0.2', method: 'GET', path: '/ok', host: `rebind.test:${port}` },
    ]);
    // One A query: the connection did not look the name up again.
    expect(dns.queries('rebind.test').filter((q) => q.type === 'A')).toHaveLength(1);
    // The control: a connect-time lookup would now have answered the trap address…
    expect(await dns.resolve('rebind.test')).toEqual([{ address: '127.0.0.3', family: 4 }]);
    // …and a new request, which checks again, is blocked.
    const error = await rejection(
      guardedFetch({ url: `http://rebind.test:${port}/ok` }, options()),
    );
    expect(error.code).toBe('GUARD_BLOCKED');
    expect(trapHits()).toEqual([]);
  });

  it('checks each redirect hop afresh: a name that rebinds between hops is blocked', async () => {
    dns.set('hop.test', [{ A: ['127.0.0.2'] }, { A: ['127.0.0.3'] }]);
    const error = await rejection(
      guardedFetch({ url: `http://hop.test:${port}/redirect?to=/ok` }, options()),
    );
    expect(error.code).toBe('GUARD_BLOCKED');
    expect(error.details?.reasons).toEqual([`hop.test resolves to 127.0.0.3, which is loopback`]);
    expect(hits.map((h) => h.listener)).toEqual(['127.0.0.2']);
  });
});

describe('allowed host', () => {
  const SAME_HOST = [
    { name: 'name', url: 'http://allowed.test:{P}/ok' },
    { name: 'name with trailing dot', url: 'http://ALLOWED.test.:{P}/ok' },
    { name: 'dotted', url: 'http://127.0.0.2:{P}/ok' },
    { name: 'decimal', url: 'http://2130706434:{P}/ok' },
    { name: 'hex', url: 'http://0x7f000002:{P}/ok' },
    { name: 'octal', url: 'http://0177.0.0.2:{P}/ok' },
    { name: 'short', url: 'http://127.2:{P}/ok' },
    { name: 'IPv4-mapped', url: 'http://[::ffff:127.0.0.2]:{P}/ok' },
    { name: 'redirect within the host', url: via('/ok') },
    { name: 'absolute redirect to another allowed name', url: via('http://alias.test:{P}/ok') },
    {
      name: `a chain of exactly ${DEFAULT_MAX_REDIRECTS}`,
      url: `http://allowed.test:{P}/chain/${DEFAULT_MAX_REDIRECTS}`,
    },
  ];

  it.each(SAME_HOST)('passes $name and returns the body', async ({ url }) => {
    const response = await guardedFetch({ url: withPort(url) }, options());
    expect(response.status).toBe(200);
    expect(response.body).toMatch(/^(hello from the allowed host|end of chain)$/);
    expect(response.bytes).toBe(Buffer.byteLength(response.body));
    expect(response.address).toMatch(/^(127\.0\.0\.2|::ffff:7f00:2)$/);
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => h.listener === '127.0.0.2')).toBe(true);
  });

  it('reports redirects, keeps the Host header and rewrites 303 to GET without a body', async () => {
    const response = await guardedFetch(
      {
        url: `http://allowed.test:${port}/redirect?status=303&to=/echo`,
        method: 'POST',
        body: 'payload',
        headers: { 'content-type': 'text/plain' },
      },
      options(),
    );
    expect(response.redirects).toEqual([`http://allowed.test:${port}/echo`]);
    expect(response.url).toBe(`http://allowed.test:${port}/echo`);
    const echo = JSON.parse(response.body) as {
      method: string;
      body: string;
      headers: Record<string, string>;
    };
    expect(echo.method).toBe('GET');
    expect(echo.body).toBe('');
    expect(echo.headers['content-type']).toBeUndefined();
    expect(echo.headers.host).toBe(`allowed.test:${port}`);
  });

  it('keeps method and body on 307', async () => {
    const response = await guardedFetch(
      {
        url: `http://allowed.test:${port}/redirect?status=307&to=/echo`,
        method: 'POST',
        body: 'payload',
      },
      options(),
    );
    const echo = JSON.parse(response.body) as { method: string; body: string };
    expect(echo).toMatchObject({ method: 'POST', body: 'payload' });
  });

  it('drops credentials on a cross-origin redirect, keeps them on the same origin', async () => {
    const headers = { authorization: 'Bearer secret', cookie: 'a=b', 'x-other': 'kept' };
    const same = await guardedFetch(
      { url: `http://allowed.test:${port}/redirect?to=/echo`, headers },
      options(),
    );
    expect((JSON.parse(same.body) as { headers: Record<string, string> }).headers).toMatchObject(
      headers,
    );
    const cross = await guardedFetch(
      { url: withPort(via('http://alias.test:{P}/echo')) },
      options(),
    );
    expect(cross.status).toBe(200);
    const crossWithCreds = await guardedFetch(
      { url: withPort(via('http://alias.test:{P}/echo')), headers },
      options(),
    );
    const seen = (JSON.parse(crossWithCreds.body) as { headers: Record<string, string> }).headers;
    expect(seen.authorization).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
    expect(seen['x-other']).toBe('kept');
    expect(seen.host).toBe(`alias.test:${port}`);
  });

  it('calls checkRedirect for every hop; throwing stops before the target is contacted', async () => {
    const seen: string[] = [];
    const ok = await guardedFetch(
      { url: `http://allowed.test:${port}/chain/2` },
      options({ checkRedirect: (u) => void seen.push(u.href) }),
    );
    expect(ok.body).toBe('end of chain');
    expect(seen).toEqual([
      `http://allowed.test:${port}/chain/1`,
      `http://allowed.test:${port}/chain/0`,
    ]);
    expect(ok.redirects).toEqual(seen);

    hits.length = 0;
    const denied = await rejection(
      guardedFetch(
        { url: withPort(via('http://alias.test:{P}/ok')) },
        options({
          checkRedirect: (u) => {
            if (u.hostname === 'alias.test') throw new WardenError('POLICY_DENIED', 'not alias');
          },
        }),
      ),
    );
    expect(denied.code).toBe('POLICY_DENIED');
    expect(hits.map((h) => h.path)).toEqual([expect.stringMatching(/^\/redirect/)]);

    const thrown = await rejection(
      guardedFetch(
        { url: withPort(via('/ok')) },
        options({
          checkRedirect: () => {
            throw new Error('nope');
          },
        }),
      ),
    );
    expect(thrown.code).toBe('GUARD_BLOCKED');
  });

  it('opens a blocked range only through the allow list', async () => {
    const error = await rejection(
      guardedFetch({ url: `http://allowed.test:${port}/ok` }, options({ allow: [] })),
    );
    expect(error.code).toBe('GUARD_BLOCKED');
    expect(error.details?.addresses).toEqual([
      { address: '127.0.0.2', range: 'loopback', blocked: true },
    ]);
    expect(hits).toEqual([]);
  });
});

describe('limits', () => {
  it('returns a body of exactly maxBytes and refuses one byte more', async () => {
    const ok = await guardedFetch(
      { url: `http://allowed.test:${port}/big?n=5000` },
      options({ maxBytes: 5000 }),
    );
    expect(ok.bytes).toBe(5000);
    const over = await rejection(
      guardedFetch({ url: `http://allowed.test:${port}/big?n=5001` }, options({ maxBytes: 5000 })),
    );
    expect(over.code).toBe('TOOL_ERROR');
    expect(over.details?.limit).toBe('maxBytes');
  });

  it('refuses a declared content-length over maxBytes before reading', async () => {
    const over = await rejection(
      guardedFetch(
        { url: `http://allowed.test:${port}/big?n=5001&declare=1` },
        options({ maxBytes: 5000 }),
      ),
    );
    expect(over.code).toBe('TOOL_ERROR');
    expect(over.message).toContain('content-length 5001');
  });

  it('enforces timeoutMs on a server that never finishes', async () => {
    const error = await rejection(
      guardedFetch({ url: `http://allowed.test:${port}/slow` }, options({ timeoutMs: 300 })),
    );
    expect(error.code).toBe('TOOL_ERROR');
    expect(error.details?.limit).toBe('timeoutMs');
  });

  it('gives CANCELED when the caller aborts', async () => {
    const controller = new AbortController();
    const pending = guardedFetch(
      { url: `http://allowed.test:${port}/slow` },
      options(),
      controller.signal,
    );
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(pending);
    expect(error.code).toBe('CANCELED');
  });

  it('honours a smaller maxRedirects', async () => {
    const error = await rejection(
      guardedFetch({ url: `http://allowed.test:${port}/chain/2` }, options({ maxRedirects: 1 })),
    );
    expect(error.code).toBe('GUARD_BLOCKED');
    expect(error.details?.reasons).toEqual(['more than 1 redirects (maxRedirects)']);
  });

  it('reports an unknown name as TOOL_ERROR, not as a block', async () => {
    const error = await rejection(guardedFetch({ url: 'http://nowhere.test/' }, options()));
    expect(error.code).toBe('TOOL_ERROR');
  });

  it('checks its arguments', async () => {
    const bad = [
      () => guardedFetch({ url: 'http://allowed.test/', headers: { host: 'evil' } }, options()),
      () => guardedFetch({ url: 'http://allowed.test/', method: 'CONNECT' }, options()),
      () => guardedFetch({ url: 'http://allowed.test/' }, options({ allow: ['10.0.0.0/33'] })),
      () => guardedFetch({ url: 'http://allowed.test/' }, { ...options(), maxBytes: 0 }),
      () =>
        guardedFetch({ url: 'http://allowed.test/' }, {
          ...options(),
          bogus: 1,
        } as SafeFetchOptions),
    ];
    for (const call of bad) {
      const error = await rejection(call());
      expect(isWardenError(error, 'INVALID_PARAMS'), error.message).toBe(true);
    }
    expect(hits).toEqual([]);
  });
});

// A self-signed certificate for allowed.test only (EC P-256, valid to 2126), test use only.
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwBfcW2QM+X6AvasG
87cvw7n+CGXBmVaxPJ4I7wKsW3KhRANCAARtPmGsrYWxrkADIj+8PNtoCU9wF4Yh
PbtWDoeirVhoPAh0x+no4xdXtZjh5dah0PBPsfm/ld8Fo/iftdjwdNFA
-----END PRIVATE KEY-----
`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBnjCCAUSgAwIBAgIUGWwxQCXFElvEKUNPe2MTZAh0qWgwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMYWxsb3dlZC50ZXN0MCAXDTI2MTIwNDE3Mzc1NVoYDzIxMjYx
MTEwMTczNzU1WjAXMRUwEwYDVQQDDAxhbGxvd2VkLnRlc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAARtPmGsrYWxrkADIj+8PNtoCU9wF4YhPbtWDoeirVhoPAh0
x+no4xdXtZjh5dah0PBPsfm/ld8Fo/iftdjwdNFAo2wwajAdBgNVHQ4EFgQUJr4a
fDCoKajOhTBEu5w8ReJ4v60wHwYDVR0jBBgwFoAUJr4afDCoKajOhTBEu5w8ReJ4
v60wDwYDVR0TAQH/BAUwAwEB/zAXBgNVHREEEDAOggxhbGxvd2VkLnRlc3QwCgYI
KoZIzj0EAwIDSAAwRQIgNYb37W7q7aoPAAt1tL+xMbzRYCKGY3q47Sa27ra79c0C
IQCCWQsPqt9O14P+DdSqQuZ+l3cTdugQgA1E2BBPgQrfFw==
-----END CERTIFICATE-----
`;

describe('https', () => {
  let tlsPort = 0;
  const seen: { servername: string | false | null; host: string }[] = [];
  const defaultCas = getCACertificates('default');

  beforeAll(async () => {
    // Trust the test certificate the way a system store would (no option on the guard).
    setDefaultCACertificates([...defaultCas, TLS_CERT]);
    const server = createHttpsServer({ key: TLS_KEY, cert: TLS_CERT }, (req, res) => {
      seen.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host ?? '' });
      res.end('hello over tls');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', () => resolve()));
    servers.push(server);
    tlsPort = (server.address() as AddressInfo).port;
  });

  afterAll(() => setDefaultCACertificates(defaultCas));

  it('connects to the checked address with SNI, Host and certificate check on the name', async () => {
    const response = await guardedFetch({ url: `https://allowed.test:${tlsPort}/ok` }, options());
    expect(response).toMatchObject({ status: 200, body: 'hello over tls', address: '127.0.0.2' });
    expect(seen).toEqual([{ servername: 'allowed.test', host: `allowed.test:${tlsPort}` }]);
  });

  it('still verifies the certificate: another name on the same address fails', async () => {
    for (const url of [`https://alias.test:${tlsPort}/ok`, `https://127.0.0.2:${tlsPort}/ok`]) {
      const error = await rejection(guardedFetch({ url }, options()));
      expect(error.code).toBe('TOOL_ERROR');
      expect(error.message).toMatch(/altnames|certificate/i);
    }
  });
});
