/**
 * OpenClaw Gateway v4 conformance, transport and handshake (reference/openclaw-gateway-v4.md
 * §1, §2, §3, §5.3): one test per documented rule, driving a real `warden serve` through the
 * raw client in helpers/openclaw-gateway.ts, which is written from the reference's schemas.
 *
 * Auth failures are rate-limited per client address (§2.4), so every test that fails auth on
 * purpose connects from its own loopback address (127.0.0.N) and never locks out 127.0.0.1.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { json, runCli } from './helpers/cli.ts';
import {
  cliConnectParams,
  type Frame,
  type GatewayDaemon,
  RawGatewayClient,
  startGatewayDaemon,
} from './helpers/openclaw-gateway.ts';
import { upgradeStatus } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NEXT_STEPS = [
  'retry_with_device_token',
  'update_auth_configuration',
  'update_auth_credentials',
  'wait_then_retry',
  'review_auth_configuration',
];
const PASSWORD = 'correct horse battery staple';
const ALLOWED_ORIGIN = 'https://ops.example.com';

const clients: RawGatewayClient[] = [];
const daemons: GatewayDaemon[] = [];

/** Token mode (fast ticks, one allowed Origin); password mode; password with its secret unset; none. */
let tokenGw: GatewayDaemon;
let passwordGw: GatewayDaemon;
let unsetGw: GatewayDaemon;
let noneGw: GatewayDaemon;

// Started together: each start is mostly waiting on a child process.
beforeAll(async () => {
  const started = await Promise.all([
    startGatewayDaemon({
      openclaw: ['tick_interval: 200ms'],
      extraConfig: `  allowed_origins: ["${ALLOWED_ORIGIN}"]`,
    }),
    startGatewayDaemon({
      openclaw: ['auth:', '  mode: password', '  password_secret: OC_PASS'],
      env: { WARDEN_SECRET_OC_PASS: PASSWORD },
    }),
    startGatewayDaemon({
      openclaw: ['auth:', '  mode: password', '  password_secret: OC_NOT_SET'],
    }),
    startGatewayDaemon({
      openclaw: ['auth:', '  mode: none', '  scopes: [read]', 'handshake_timeout: 1s'],
    }),
  ]);
  daemons.push(...started);
  [tokenGw, passwordGw, unsetGw, noneGw] = started;
}, 90_000);

afterAll(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
  removeTempDirs();
});

function track(client: RawGatewayClient): RawGatewayClient {
  clients.push(client);
  return client;
}

/** The §2.5 fields a test reads (the payload is checked, not trusted). */
interface HelloOk {
  type: unknown;
  protocol: unknown;
  server: { version: string; connId: string };
  features: { methods: unknown[]; events: unknown[] };
  snapshot: {
    presence: unknown;
    health: unknown;
    stateVersion: { presence: unknown; health: unknown };
    uptimeMs: number;
  };
  auth: unknown;
  policy: unknown;
}

const isChallenge = (f: Frame) => f.type === 'event' && f.event === 'connect.challenge';

/** Opens a socket (from `localAddress` when given) and waits for the challenge. */
async function opened(url: string, localAddress?: string): Promise<RawGatewayClient> {
  const client = track(
    localAddress === undefined
      ? await RawGatewayClient.open(url)
      : await RawGatewayClient.openWith(url, { localAddress }),
  );
  await client.waitFor(isChallenge);
  return client;
}

/** Sends `connect` with `params` and returns the client and its response. */
async function connectWith(
  url: string,
  params: unknown,
  options: { localAddress?: string; id?: string } = {},
): Promise<{ client: RawGatewayClient; res: Frame }> {
  const client = await opened(url, options.localAddress);
  const res = await client.request(
    'connect',
    params,
    options.id === undefined ? {} : { id: options.id },
  );
  return { client, res };
}

/** A connect that must fail: its error response, then the close that follows it. */
async function refused(
  url: string,
  params: unknown,
  localAddress?: string,
): Promise<{ res: Frame; close: { code: number; reason: string }; client: RawGatewayClient }> {
  const { client, res } = await connectWith(
    url,
    params,
    localAddress === undefined ? {} : { localAddress },
  );
  expect(res.ok, JSON.stringify(res)).toBe(false);
  const close = await closedWithin(client);
  // Exactly one response to the failed connect, nothing after it.
  expect(client.frames.filter((f) => f.type === 'res')).toHaveLength(1);
  // §1.4: a close reason is at most 120 UTF-8 bytes and never empty after a failed handshake.
  expect(Buffer.byteLength(close.reason)).toBeLessThanOrEqual(120);
  expect(close.reason.length).toBeGreaterThan(0);
  return { res, close, client };
}

async function closedWithin(
  client: RawGatewayClient,
  ms = 5_000,
): Promise<{ code: number; reason: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([client.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function hello(client: RawGatewayClient): Record<string, unknown> {
  const res = client.frames.find((f) => f.type === 'res' && f.ok === true);
  expect(res, JSON.stringify(client.frames)).toBeDefined();
  return res!.payload as Record<string, unknown>;
}

function grantedScopes(client: RawGatewayClient): string[] {
  return (hello(client).auth as { scopes: string[] }).scopes;
}

/** §2.4: every auth failure carries `details.code` and the documented helper fields. */
function expectAuthFailure(res: Frame, detailsCode: string): void {
  expect(res.error).toMatchObject({ code: 'INVALID_REQUEST', details: { code: detailsCode } });
  expect(res.error!.message).toMatch(/^unauthorized/);
  expect(res.error!.details!.canRetryWithDeviceToken).toBeTypeOf('boolean');
  expect(NEXT_STEPS).toContain(res.error!.details!.recommendedNextStep);
}

function expectMissingScope(res: Frame, scope: string): void {
  expect(res.ok).toBe(false);
  expect(res.error).toMatchObject({
    code: 'FORBIDDEN',
    message: `missing scope: ${scope}`,
    details: { code: 'MISSING_SCOPE', missingScope: scope },
  });
  const required = res.error!.details!.requiredScopes as string[];
  expect(Array.isArray(required) && required.length >= 1).toBe(true);
  expect(required).toContain(scope);
}

async function createToken(home: string, name: string, scopes: string): Promise<string> {
  const created = await runCli(['--json', 'token', 'create', '--name', name, '--scopes', scopes], {
    home,
  });
  expect(created.code, created.stderr).toBe(0);
  return json<{ token: string }>(created).token;
}

describe('token mode', () => {
  let gw: GatewayDaemon;
  beforeAll(() => {
    gw = tokenGw;
  });

  it('sends connect.challenge at once: a uuid nonce, an integer ts and no seq', async () => {
    const before = Date.now();
    const a = track(await RawGatewayClient.open(gw.url));
    const challenge = await a.waitFor(() => true, 2_000);
    expect(challenge.type).toBe('event');
    expect(challenge.event).toBe('connect.challenge');
    expect(challenge).not.toHaveProperty('seq');
    const payload = challenge.payload as { nonce: unknown; ts: unknown };
    expect(payload.nonce).toMatch(UUID);
    expect(Number.isInteger(payload.ts)).toBe(true);
    expect(payload.ts as number).toBeGreaterThanOrEqual(before - 5_000);
    expect(payload.ts as number).toBeLessThanOrEqual(Date.now() + 5_000);
    for (const key of Object.keys(payload)) expect(['nonce', 'ts', 'capabilities']).toContain(key);
    // A fresh nonce per socket.
    const b = await opened(gw.url);
    expect((b.frames[0]!.payload as { nonce: string }).nonce).not.toBe(payload.nonce);
  });

  it('answers a CLI connect with hello-ok carrying every field §2.5 requires', async () => {
    const id = `1:${randomUUID()}`;
    const { client, res } = await connectWith(gw.url, cliConnectParams(gw.token), { id });
    expect(res).toMatchObject({ type: 'res', id, ok: true });
    const ok = res.payload as HelloOk;
    expect(ok.type).toBe('hello-ok');
    expect(ok.protocol).toBe(4);
    expect(ok.server.version).toBeTypeOf('string');
    expect(ok.server.version.length).toBeGreaterThan(0);
    expect(ok.server.connId).toMatch(UUID);
    expect(Array.isArray(ok.features.methods)).toBe(true);
    expect(ok.features.methods).toEqual(expect.arrayContaining(['health', 'status']));
    for (const m of ok.features.methods) expect(m).toBeTypeOf('string');
    expect(ok.features.events).toEqual(expect.arrayContaining(['tick', 'shutdown']));
    expect(Array.isArray(ok.snapshot.presence)).toBe(true);
    expect(ok.snapshot.health).toBeTypeOf('object');
    expect(ok.snapshot.health).not.toBeNull();
    expect(Number.isInteger(ok.snapshot.stateVersion.presence)).toBe(true);
    expect(Number.isInteger(ok.snapshot.stateVersion.health)).toBe(true);
    expect(Number.isInteger(ok.snapshot.uptimeMs)).toBe(true);
    expect(ok.snapshot.uptimeMs).toBeGreaterThanOrEqual(0);
    expect(ok.auth).toMatchObject({ role: 'operator', scopes: ['operator.read'] });
    expect(ok.policy).toEqual({
      maxPayload: 26_214_400,
      maxBufferedBytes: 52_428_800,
      tickIntervalMs: 200,
    });
    // "Omit optional fields rather than sending null" (§2.5).
    const nulls: string[] = [];
    const walk = (v: unknown, path: string) => {
      if (v === null) nulls.push(path);
      else if (typeof v === 'object')
        for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
    };
    for (const key of ['server', 'features', 'auth', 'policy'] as const) walk(ok[key], key);
    expect(nulls).toEqual([]);
    // The schemas are closed: only the fields §2.5 names.
    const allowed: Record<string, string[]> = {
      server: ['version', 'connId', 'buildId', 'bootId'],
      features: ['methods', 'events', 'capabilities'],
      auth: ['role', 'scopes', 'deviceToken', 'issuedAtMs', 'deviceTokens'],
      policy: [
        'maxPayload',
        'maxBufferedBytes',
        'tickIntervalMs',
        'attachments',
        'allowedSessionVisibilities',
      ],
      snapshot: [
        'presence',
        'health',
        'stateVersion',
        'uptimeMs',
        'sessionDefaults',
        'authMode',
        'configPath',
        'stateDir',
        'appliedConfigHash',
        'updateAvailable',
      ],
    };
    for (const [key, fields] of Object.entries(allowed))
      for (const field of Object.keys(ok[key as keyof HelloOk] as object))
        expect(fields, `hello-ok.${key}.${field}`).toContain(field);
    // Each socket gets its own connId.
    const other = await RawGatewayClient.connect(gw.url, gw.token);
    track(other);
    expect(hello(other).server).not.toEqual(ok.server);
    expect((hello(other) as unknown as HelloOk).server.connId).not.toBe(ok.server.connId);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('echoes request ids byte for byte (unicode, long, "1:<uuid>", escapes)', async () => {
    const connectId = '🦀 connect "ü" \\ e\u0301 1';
    const { client, res } = await connectWith(gw.url, cliConnectParams(gw.token), {
      id: connectId,
    });
    expect(res.ok).toBe(true);
    expect(res.id).toBe(connectId);
    const ids = [
      `1:${randomUUID()}`,
      `2:${randomUUID()}`,
      randomUUID(),
      'ünïcödé-日本語-🦀🦀',
      'e\u0301 vs \u00e9',
      '\ud800 lone surrogate',
      ' ',
      '"quoted" \\backslash\\ \n\t\u0000 control',
      'x'.repeat(1_000),
      '0',
      'null',
    ];
    for (const id of ids) {
      const reply = await client.request('health', undefined, { id });
      expect(reply.id).toBe(id);
      expect(reply.ok).toBe(true);
    }
    // An error reply echoes the id too.
    const failed = await client.request('no.such.method', {}, { id: 'ëxotic:1' });
    expect(failed.id).toBe('ëxotic:1');
    expect(failed.ok).toBe(false);
  });

  it('accepts a probe client offering protocol 3..4 (or 3..3) and any client whose range holds 4; hello-ok says 4', async () => {
    const probe = { id: 'openclaw-probe', version: 'dev', platform: 'linux', mode: 'probe' };
    for (const extra of [
      { minProtocol: 3, maxProtocol: 4, client: probe },
      { minProtocol: 3, maxProtocol: 3, client: probe },
      { minProtocol: 3, maxProtocol: 4 },
      { minProtocol: 1, maxProtocol: 9 },
    ]) {
      const { client, res } = await connectWith(
        gw.url,
        cliConnectParams(gw.token, ['operator.read'], extra),
      );
      expect(res.ok, `${JSON.stringify(extra)}: ${JSON.stringify(res.error)}`).toBe(true);
      expect((res.payload as { protocol: number }).protocol).toBe(4);
      expect((await client.request('health')).ok).toBe(true);
    }
  });

  it('refuses a CLI client offering only protocol 3 (or only 5..6): PROTOCOL_MISMATCH, close 1002', async () => {
    for (const [min, max] of [
      [3, 3],
      [5, 6],
    ] as const) {
      const { res, close } = await refused(
        gw.url,
        cliConnectParams(gw.token, ['operator.read'], { minProtocol: min, maxProtocol: max }),
      );
      expect(res.error).toMatchObject({
        code: 'INVALID_REQUEST',
        message: 'protocol mismatch',
        details: {
          code: 'PROTOCOL_MISMATCH',
          clientMinProtocol: min,
          clientMaxProtocol: max,
          expectedProtocol: 4,
          minimumProbeProtocol: 3,
        },
      });
      expect(close).toEqual({ code: 1002, reason: 'protocol mismatch' });
    }
    // Protocol comes before role and credentials (§2.1 step 3).
    const { res } = await refused(
      gw.url,
      cliConnectParams('wrong-token', ['operator.read'], {
        minProtocol: 5,
        maxProtocol: 5,
        role: 'garbage',
      }),
      '127.0.0.15',
    );
    expect(res.error!.details!.code).toBe('PROTOCOL_MISMATCH');
  });

  it('closes 1008 without any response when the first frame is not a valid req', async () => {
    const firstFrames: Array<(c: RawGatewayClient) => void> = [
      (c) => c.send('this is not json'),
      (c) => c.send('{"type":"req","id":"1","method":"connect"'),
      (c) => c.send({ type: 'event', event: 'connect.challenge', payload: {} }),
      (c) => c.send({ type: 'cancel', id: '1:abc' }),
      (c) => c.send({ type: 'res', id: '1', ok: true }),
      (c) => c.send({ type: 'req', id: '', method: 'connect', params: {} }),
      (c) => c.send({ type: 'req', id: 7, method: 'connect', params: {} }),
      (c) => c.send([{ type: 'req', id: '1', method: 'connect' }]),
      (c) =>
        c.sendBytes(Buffer.from(JSON.stringify({ type: 'req', id: '1', method: 'connect' })), true),
    ];
    for (const send of firstFrames) {
      const client = await opened(gw.url);
      send(client);
      const close = await closedWithin(client);
      expect(close.code).toBe(1008);
      expect(close.reason).toBe('invalid request frame');
      expect(client.frames.filter((f) => f.type === 'res')).toEqual([]);
    }
  });

  it('answers a first req that is not connect with "invalid handshake: first request must be connect", then closes 1008', async () => {
    const client = await opened(gw.url);
    const id = `1:${randomUUID()}`;
    client.send({ type: 'req', id, method: 'health' });
    const close = await closedWithin(client);
    const res = client.frames.filter((f) => f.type === 'res');
    expect(res).toHaveLength(1);
    expect(res[0]).toMatchObject({
      id,
      ok: false,
      error: {
        code: 'INVALID_REQUEST',
        message: 'invalid handshake: first request must be connect',
      },
    });
    expect(close.code).toBe(1008);
  });

  it('answers connect params that fail the schema with "invalid connect params: …", then closes 1008', async () => {
    const good = cliConnectParams(gw.token);
    const noClient = Object.fromEntries(Object.entries(good).filter(([k]) => k !== 'client'));
    const bad: unknown[] = [
      undefined,
      null,
      [],
      'connect',
      {},
      noClient,
      { ...good, minProtocol: '4' },
      { ...good, maxProtocol: 4.5 },
      { ...good, client: 'cli' },
      { ...good, client: { ...(good.client as object), mode: 'bogus' } },
      { ...good, client: { ...(good.client as object), id: 42 } },
      { ...good, scopes: 'operator.read' },
      { ...good, auth: { token: 42 } },
    ];
    for (const params of bad) {
      const { res, close } = await refused(gw.url, params);
      expect(res.error!.code).toBe('INVALID_REQUEST');
      expect(res.error!.message).toMatch(/^invalid connect params: \S/);
      expect(close.code).toBe(1008);
    }
  });

  it('refuses role node and unknown roles with "invalid role", close 1008 (before auth)', async () => {
    for (const role of ['node', 'garbage', 'admin', '']) {
      const { res, close } = await refused(
        gw.url,
        cliConnectParams(gw.token, ['operator.read'], { role }),
      );
      expect(res.error!.code).toBe('INVALID_REQUEST');
      expect(res.error!.message).toMatch(/^invalid role/);
      expect(close.code).toBe(1008);
    }
    // The role is checked before the credentials (§2.1 step 3): a bad token still gets "invalid role".
    const { res } = await refused(
      gw.url,
      cliConnectParams('wrong-token', ['operator.read'], { role: 'garbage' }),
      '127.0.0.10',
    );
    expect(res.error!.message).toMatch(/^invalid role/);
  });

  it('refuses a wrong token with details.code AUTH_TOKEN_MISMATCH and closes 1008 with the message', async () => {
    for (const token of [
      'wrong-token',
      `${gw.token}x`,
      'wdn_tok_00000000000000000000000000000000_x',
    ]) {
      const { res, close } = await refused(gw.url, cliConnectParams(token), '127.0.0.11');
      expectAuthFailure(res, 'AUTH_TOKEN_MISMATCH');
      expect(res.error!.message).toBe('unauthorized: gateway token mismatch');
      expect(res.error!.retryable).not.toBe(true);
      expect(close.code).toBe(1008);
      expect(close.reason).toBe(res.error!.message);
    }
  });

  it('refuses a connect without a token with details.code AUTH_TOKEN_MISSING', async () => {
    for (const extra of [
      {},
      { auth: {} },
      { auth: { token: '' } },
      { auth: { password: PASSWORD } },
    ]) {
      const { res, close } = await refused(
        gw.url,
        { ...cliConnectParams(undefined), ...extra },
        '127.0.0.12',
      );
      expectAuthFailure(res, 'AUTH_TOKEN_MISSING');
      expect(close.code).toBe(1008);
    }
  });

  it('rate-limits an address after 10 failures: AUTH_RATE_LIMITED, retryable, retryAfterMs, even for the right token', async () => {
    const from = '127.0.0.13';
    for (let i = 0; i < 10; i++) {
      const { res } = await refused(gw.url, cliConnectParams(`bad-${i}`), from);
      expectAuthFailure(res, 'AUTH_TOKEN_MISMATCH');
    }
    const { res, close } = await refused(gw.url, cliConnectParams(gw.token), from);
    expectAuthFailure(res, 'AUTH_RATE_LIMITED');
    expect(res.error!.retryable).toBe(true);
    expect(Number.isInteger(res.error!.retryAfterMs)).toBe(true);
    expect(res.error!.retryAfterMs!).toBeGreaterThan(0);
    expect(res.error!.retryAfterMs!).toBeLessThanOrEqual(60_000);
    expect(close.code).toBe(1008);
    // Per address: another address with the right token still gets in.
    const other = await connectWith(gw.url, cliConnectParams(gw.token), {
      localAddress: '127.0.0.14',
    });
    expect(other.res.ok, JSON.stringify(other.res.error)).toBe(true);
  });

  it('answers a second connect with "connect is only valid as the first request" and keeps the socket open', async () => {
    const client = track(await RawGatewayClient.connect(gw.url, gw.token));
    const again = await client.request('connect', cliConnectParams(gw.token));
    expect(again).toMatchObject({
      ok: false,
      error: { code: 'INVALID_REQUEST', message: 'connect is only valid as the first request' },
    });
    expect((await client.request('health')).ok).toBe(true);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('grants declared ∩ credential: the admin token declaring only operator.read gets read, and MISSING_SCOPE for an admin method', async () => {
    const client = track(await RawGatewayClient.connect(gw.url, gw.token, ['operator.read']));
    expect(grantedScopes(client)).toEqual(['operator.read']);
    expect((await client.request('health')).ok).toBe(true);
    expectMissingScope(await client.request('sessions.reset', { key: 'main' }), 'operator.admin');
    expectMissingScope(
      await client.request('chat.abort', { sessionKey: 'main' }),
      'operator.write',
    );
    // No declared scopes: default deny, even for the admin token (§2.2).
    const none = track(await RawGatewayClient.connect(gw.url, gw.token, []));
    expect(grantedScopes(none)).toEqual([]);
    expectMissingScope(await none.request('health'), 'operator.read');
    const undeclared = Object.fromEntries(
      Object.entries(cliConnectParams(gw.token)).filter(([k]) => k !== 'scopes'),
    );
    const absent = await connectWith(gw.url, undeclared);
    expect(absent.res.ok).toBe(true);
    expect(grantedScopes(absent.client)).toEqual([]);
    // Unknown scope names are dropped, duplicates collapsed.
    const odd = track(
      await RawGatewayClient.connect(gw.url, gw.token, [
        'operator.read',
        'operator.bogus',
        'admin',
        'operator.read',
      ]),
    );
    expect(grantedScopes(odd)).toEqual(['operator.read']);
  });

  it('a read-only API token declaring operator.admin gets no admin; a write token gets write', async () => {
    const [readToken, writeToken] = await Promise.all([
      createToken(gw.home, 'oc-read', 'read'),
      createToken(gw.home, 'oc-write', 'read,write'),
    ]);
    const ro = track(
      await RawGatewayClient.connect(gw.url, readToken, [
        'operator.admin',
        'operator.read',
        'operator.write',
      ]),
    );
    expect(grantedScopes(ro)).toEqual(['operator.read']);
    expect((await ro.request('health')).ok).toBe(true);
    expectMissingScope(await ro.request('sessions.reset', { key: 'main' }), 'operator.admin');
    expectMissingScope(await ro.request('chat.abort', { sessionKey: 'main' }), 'operator.write');

    const rw = track(
      await RawGatewayClient.connect(gw.url, writeToken, ['operator.admin', 'operator.write']),
    );
    expect(grantedScopes(rw)).toEqual(['operator.write']);
    // write satisfies read (§2.6)
    expect((await rw.request('health')).ok).toBe(true);
    expectMissingScope(await rw.request('sessions.reset', { key: 'main' }), 'operator.admin');
  });

  it('unknown method: INVALID_REQUEST "unknown method: X" for admin, MISSING_SCOPE operator.admin for others', async () => {
    const admin = track(await RawGatewayClient.connect(gw.url, gw.token, ['operator.admin']));
    for (const method of ['no.such.method', 'Health', 'health ', 'wizard.start']) {
      const res = await admin.request(method, {});
      expect(res).toMatchObject({
        ok: false,
        error: { code: 'INVALID_REQUEST', message: `unknown method: ${method}` },
      });
    }
    const reader = track(
      await RawGatewayClient.connect(gw.url, gw.token, ['operator.read', 'operator.write']),
    );
    // Unclassified methods need admin (default deny, §2.6).
    expectMissingScope(await reader.request('no.such.method', {}), 'operator.admin');
  });

  it('unclassified methods named like Object.prototype members (constructor, toString, __proto__) need operator.admin like any other', async () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    const reader = track(await RawGatewayClient.connect(gw.url, gw.token, ['operator.read']));
    const admin = track(await RawGatewayClient.connect(gw.url, gw.token, ['operator.admin']));
    for (const method of names) {
      expectMissingScope(await reader.request(method, {}), 'operator.admin');
      expect((await admin.request(method, {})).error).toMatchObject({
        code: 'INVALID_REQUEST',
        message: `unknown method: ${method}`,
      });
    }
  });

  it('never replies to cancel frames', async () => {
    const client = track(await RawGatewayClient.connect(gw.url, gw.token));
    const from = client.frames.length;
    client.send({ type: 'cancel', id: 'nothing-pending' });
    // A cancel for a request sent just before it: that request gets its one response, the
    // cancel none.
    const id = client.nextId();
    client.send({ type: 'req', id, method: 'health' });
    client.send({ type: 'cancel', id });
    // Frames are handled in order: once the sentinel is answered, any reply to a cancel
    // would already be here.
    const sentinel = await client.request('health');
    expect(sentinel.ok).toBe(true);
    await client.until(() => client.frames.some((f) => f.type === 'res' && f.id === id), 5_000);
    const replies = client.frames.slice(from).filter((f) => f.type === 'res');
    expect(replies.filter((f) => f.id === 'nothing-pending')).toEqual([]);
    expect(replies.filter((f) => f.id === id)).toHaveLength(1);
    expect(replies.filter((f) => f.id === 'invalid')).toEqual([]);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('treats health params null, {} and absent alike; non-object params are INVALID_REQUEST', async () => {
    const client = track(await RawGatewayClient.connect(gw.url, gw.token));
    const shapes: string[][] = [];
    for (const params of [undefined, null, {}]) {
      const res = await client.request('health', params);
      expect(res.ok, JSON.stringify(res.error)).toBe(true);
      const payload = res.payload as Record<string, unknown>;
      expect(payload.ok).toBe(true);
      shapes.push(Object.keys(payload).sort());
    }
    expect(shapes[1]).toEqual(shapes[0]);
    expect(shapes[2]).toEqual(shapes[0]);
    for (const params of [[], 'x', 5, true, { probe: 'yes' }]) {
      const res = await client.request('health', params);
      expect(res.ok).toBe(false);
      expect(res.error!.code).toBe('INVALID_REQUEST');
      expect(res.error!.message).toMatch(/^invalid health params: \S/);
    }
  });

  it('broadcasts tick {ts} with strictly increasing seq from 1, counted per connection', async () => {
    const a = track(await RawGatewayClient.connect(gw.url, gw.token));
    await a.until(() => a.events('tick').length >= 4, 10_000, 'four ticks on A');
    const aSeqAtB = Math.max(...a.events().map((e) => e.seq ?? 0));
    const b = track(await RawGatewayClient.connect(gw.url, gw.token));
    await b.until(() => b.events('tick').length >= 3, 10_000, 'three ticks on B');
    for (const client of [a, b]) {
      const sequenced = client.events().filter((e) => e.event !== 'connect.challenge');
      // Every broadcast carries this connection's seq: 1, 2, 3, … with no gap.
      expect(sequenced.map((e) => e.seq)).toEqual(sequenced.map((_, i) => i + 1));
      const ticks = client.events('tick');
      let last = -Infinity;
      for (const t of ticks) {
        const payload = t.payload as { ts: number };
        expect(Object.keys(payload)).toEqual(['ts']);
        expect(Number.isInteger(payload.ts)).toBe(true);
        expect(payload.ts).toBeGreaterThan(last);
        last = payload.ts;
      }
    }
    // B started its own count at 1 while A was already past it.
    expect(aSeqAtB).toBeGreaterThanOrEqual(4);
    expect(b.events().find((e) => e.seq !== undefined)!.seq).toBe(1);
  });

  it("health broadcasts carry stateVersion {presence, health}, its health counter past hello-ok's", async () => {
    const client = track(await RawGatewayClient.connect(gw.url, gw.token));
    const atHello = (hello(client) as unknown as HelloOk).snapshot.stateVersion;
    // The snapshot is refreshed (and broadcast) once it is a few seconds old.
    const deadline = Date.now() + 15_000;
    while (client.events('health').length === 0 && Date.now() < deadline) {
      expect((await client.request('health')).ok).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const event = client.events('health')[0];
    expect(event, 'a health broadcast within 15 s').toBeDefined();
    expect(Number.isInteger(event!.seq)).toBe(true);
    const stateVersion = (event as { stateVersion?: { presence: unknown; health: unknown } })
      .stateVersion;
    expect(stateVersion, '§5.1: health events carry stateVersion').toBeDefined();
    expect(Number.isInteger(stateVersion!.presence)).toBe(true);
    expect(stateVersion!.health as number).toBeGreaterThan(atHello.health as number);
  });

  it('closes the socket on a pre-auth frame over 64 KiB, and accepts a connect just under it', async () => {
    const big = await opened(gw.url);
    big.send({
      type: 'req',
      id: '1',
      method: 'connect',
      params: { ...cliConnectParams(gw.token), padding: 'x'.repeat(70_000) },
    });
    const close = await closedWithin(big);
    expect(close.code).not.toBe(1000);
    expect(big.frames.filter((f) => f.type === 'res')).toEqual([]);

    const params = { ...cliConnectParams(gw.token), padding: '' };
    const frame = (pad: number) =>
      JSON.stringify({
        type: 'req',
        id: '1:x',
        method: 'connect',
        params: { ...params, padding: 'y'.repeat(pad) },
      });
    const pad = 65_536 - Buffer.byteLength(frame(0));
    expect(Buffer.byteLength(frame(pad))).toBe(65_536);
    const edge = await opened(gw.url);
    edge.send(frame(pad));
    const res = await edge.waitFor((f) => f.type === 'res');
    expect(res.ok, JSON.stringify(res.error)).toBe(true);
  });

  it('accepts post-auth frames of several MiB: 2 MiB of health params get a normal reply', async () => {
    const client = track(await RawGatewayClient.connect(gw.url, gw.token));
    const res = await client.request(
      'health',
      { probe: false, padding: 'z'.repeat(2 * 1_048_576) },
      { timeoutMs: 20_000 },
    );
    expect(res.ok, JSON.stringify(res.error)).toBe(true);
    expect((res.payload as { ok: boolean }).ok).toBe(true);
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('refuses an Origin not in server.allowed_origins with 403 at the upgrade', async () => {
    expect((await upgradeStatus(gw.url, { origin: 'https://evil.example.com' })).status).toBe(403);
    expect((await upgradeStatus(gw.url, { origin: 'null' })).status).toBe(403);
    expect((await upgradeStatus(gw.url, { origin: ALLOWED_ORIGIN })).status).toBe(101);
    // CLI clients send no Origin at all.
    expect((await upgradeStatus(gw.url, {})).status).toBe(101);
  });

  it('answers a plain HTTP GET with 426 Upgrade Required', async () => {
    const res = await fetch(gw.url.replace(/^ws/, 'http'));
    expect(res.status).toBe(426);
    await res.body?.cancel();
  });
});

describe('password mode', () => {
  let gw: GatewayDaemon;
  beforeAll(() => {
    gw = passwordGw;
  });

  const withPassword = (password: string | undefined, scopes: string[]) => ({
    ...cliConnectParams(undefined, scopes),
    ...(password === undefined ? {} : { auth: { password } }),
  });

  it('accepts the right password and grants declared ∩ auth.scopes (read, write by default)', async () => {
    const { client, res } = await connectWith(
      gw.url,
      withPassword(PASSWORD, ['operator.read', 'operator.write', 'operator.admin']),
    );
    expect(res.ok, JSON.stringify(res.error)).toBe(true);
    expect((res.payload as { auth: unknown }).auth).toEqual({
      role: 'operator',
      scopes: ['operator.read', 'operator.write'],
    });
    expect((await client.request('health')).ok).toBe(true);
    expectMissingScope(await client.request('sessions.reset', { key: 'main' }), 'operator.admin');
  });

  it('refuses a wrong password with AUTH_PASSWORD_MISMATCH and a missing one with AUTH_PASSWORD_MISSING', async () => {
    for (const wrong of [`${PASSWORD} `, 'correct horse battery stapl', 'x']) {
      const { res, close } = await refused(
        gw.url,
        withPassword(wrong, ['operator.read']),
        '127.0.0.21',
      );
      expectAuthFailure(res, 'AUTH_PASSWORD_MISMATCH');
      expect(close.code).toBe(1008);
    }
    for (const params of [
      withPassword(undefined, ['operator.read']),
      withPassword('', ['operator.read']),
      cliConnectParams(gw.token),
    ]) {
      const { res, close } = await refused(gw.url, params, '127.0.0.22');
      expectAuthFailure(res, 'AUTH_PASSWORD_MISSING');
      expect(close.code).toBe(1008);
    }
  });

  it('refuses every connect with AUTH_PASSWORD_NOT_CONFIGURED when the named secret is not set', async () => {
    for (const password of [PASSWORD, undefined]) {
      const { res, close } = await refused(
        unsetGw.url,
        withPassword(password, ['operator.read']),
        '127.0.0.23',
      );
      expectAuthFailure(res, 'AUTH_PASSWORD_NOT_CONFIGURED');
      expect(close.code).toBe(1008);
    }
  });
});

describe('auth mode none, handshake timeout and shutdown', () => {
  let gw: GatewayDaemon;
  beforeAll(() => {
    gw = noneGw;
  });

  it('mode none on loopback: a connect without credentials gets the configured scopes only', async () => {
    const { client, res } = await connectWith(
      gw.url,
      cliConnectParams(undefined, ['operator.read', 'operator.write', 'operator.admin']),
    );
    expect(res.ok, JSON.stringify(res.error)).toBe(true);
    expect(grantedScopes(client)).toEqual(['operator.read']);
    expect((await client.request('health')).ok).toBe(true);
    expectMissingScope(
      await client.request('chat.abort', { sessionKey: 'main' }),
      'operator.write',
    );
  });

  it('closes 1000 a socket that sends no connect within handshake_timeout, but not a connected one', async () => {
    const started = Date.now();
    const silent = await opened(gw.url);
    const connected = track(await RawGatewayClient.connect(gw.url, undefined, ['operator.read']));
    const close = await closedWithin(silent, 10_000);
    // §2.1: code 1000 and no reason.
    expect(close).toEqual({ code: 1000, reason: '' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(silent.frames.map((f) => f.event)).toEqual(['connect.challenge']);
    // Well past the timeout, the connected socket is still served.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect((await connected.request('health')).ok).toBe(true);
  });

  it('refuses auth.mode none on a non-loopback listen at startup (CONFIG_INVALID naming the key)', async () => {
    const home = tempDir('warden-openclaw-none-');
    expect((await runCli(['init'], { home })).code).toBe(0);
    writeFileSync(
      join(home, 'config.yaml'),
      ['server:', '  openclaw:', '    listen: 0.0.0.0:0', '    auth:', '      mode: none', ''].join(
        '\n',
      ),
    );
    const serve = await runCli(['serve', '--listen', '127.0.0.1:0'], { home, timeoutMs: 30_000 });
    expect(serve.code).toBe(2);
    const fatal = serve.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === 'fatal');
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ phase: 'config', code: 'CONFIG_INVALID' });
    expect(JSON.stringify(fatal[0])).toContain('server.openclaw.auth.mode');
    expect(JSON.stringify(fatal[0])).toContain('loopback');
  });

  // Last in this block: it stops the daemon.
  it('on SIGTERM sends shutdown {reason} to every client, then closes 1012 "service restart"', async () => {
    const a = track(await RawGatewayClient.connect(gw.url, undefined, ['operator.read']));
    const b = track(await RawGatewayClient.connect(gw.url, undefined, ['operator.read']));
    await gw.stop();
    for (const client of [a, b]) {
      const close = await closedWithin(client);
      expect(close).toEqual({ code: 1012, reason: 'service restart' });
      const shutdown = client.events('shutdown');
      expect(shutdown).toHaveLength(1);
      const payload = shutdown[0]!.payload as { reason: unknown; restartExpectedMs?: unknown };
      expect(payload.reason).toBeTypeOf('string');
      expect((payload.reason as string).length).toBeGreaterThan(0);
      // No restart is expected from a SIGTERM: the field is omitted (§2.9).
      expect(payload).not.toHaveProperty('restartExpectedMs');
      // It is the last frame, and a broadcast: it carries this connection's next seq.
      expect(client.frames.at(-1)).toBe(shutdown[0]);
      expect(Number.isInteger(shutdown[0]!.seq)).toBe(true);
    }
  });
});
