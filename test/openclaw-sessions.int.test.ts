/**
 * OpenClaw Gateway v4 conformance, session, usage and system methods (reference
 * openclaw-gateway-v4.md §4.1–§4.14, §4.19, §4.20, the per-call scopes of §2.6, and the Rust
 * rewrite's parity rules in seeds/004): every method's happy path and documented errors,
 * driving one real `warden serve` through the raw client in helpers/openclaw-gateway.ts.
 *
 * One daemon serves the whole file; every test uses its own session keys. Chat turns run a
 * scripted workflow that echoes `[scripted] <message>` one word every 30 ms, so a long message
 * keeps a turn running long enough to observe (`status`, `totalTokensFresh`, reset mid-turn).
 * A webhook channel brings channel turns (delivery-context hints, `byChannel`), and an ACP
 * client creates the subagent sessions that only Warden-side code can create (`spawnedBy`).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  expectInvalidRequest,
  expectMissingScope,
  type Frame,
  type GatewayDaemon,
  RawGatewayClient,
  startGatewayDaemon,
} from './helpers/openclaw-gateway.ts';
import { connectRaw, type RawPeer } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const HOOK_SECRET = 'hook-secret-0123456789abcdef';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const READ = ['operator.read'];
const WRITE = ['operator.read', 'operator.write'];
const ADMIN = ['operator.read', 'operator.write', 'operator.admin'];
/** A message whose echo streams ~60 words: the turn runs for about two seconds. */
const SLOW = `slow ${'w '.repeat(58)}`.trim();

let gw: GatewayDaemon;
let admin: RawGatewayClient;
let writer: RawGatewayClient;
let reader: RawGatewayClient;
let acp: RawPeer;

beforeAll(async () => {
  const workflow = join(tempDir('warden-openclaw-wf-'), 'chat.yaml');
  writeFileSync(
    workflow,
    [
      'name: openclaw-sessions-test',
      'stages:',
      '  - name: reply',
      '    agent:',
      '      kind: llm',
      "      prompt: '{{input.prompt}}'",
      '      script:',
      '        - chunk_delay_ms: 30',
      '    default_next: end',
      '',
    ].join('\n'),
  );
  gw = await startGatewayDaemon({
    openclaw: [`workflow: ${workflow}`],
    extraConfig: [
      'channels:',
      '  webhook:',
      '    - name: hook',
      '      secret_ref: OC_HOOK',
      '      dm_scope: per-account-channel-peer',
    ].join('\n'),
    env: { WARDEN_SECRET_OC_HOOK: HOOK_SECRET },
  });
  [admin, writer, reader] = await Promise.all([
    RawGatewayClient.connect(gw.url, gw.token, ADMIN),
    RawGatewayClient.connect(gw.url, gw.token, WRITE),
    RawGatewayClient.connect(gw.url, gw.token, READ),
  ]);
  acp = await connectRaw(gw.daemon.acpUrl, gw.token);
}, 60_000);

afterAll(async () => {
  for (const c of [admin, writer, reader]) c?.ws.terminate();
  acp?.ws.terminate();
  await gw?.stop();
  removeTempDirs();
});

// ---------------------------------------------------------------------------------------------
// Wire shapes the tests read (checked, not trusted)

interface Row {
  key: string;
  kind: string;
  updatedAt: number;
  createdAt?: number;
  sessionId: string;
  agentId?: string;
  label?: string;
  displayName?: string;
  status?: string;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  totalTokensFresh: boolean;
  derivedTitle?: string;
  lastMessagePreview?: string;
  [field: string]: unknown;
}

interface ListResult {
  ts: number;
  path: string;
  count: number;
  totalCount: number;
  limitApplied: number;
  offset: number;
  nextOffset: number | null;
  hasMore: boolean;
  defaults: { modelProvider: string | null; model: string | null; contextTokens: number | null };
  sessions: Row[];
}

interface Entry {
  sessionId: string;
  lifecycleRevision?: string;
  [field: string]: unknown;
}

interface PatchResult {
  ok: boolean;
  path: string;
  key: string;
  entry: Entry;
  resolved: Record<string, unknown>;
}

interface ChatMessage {
  role: string;
  content: { type: string; text: string }[];
}

interface Totals {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  totalTokens: number;
  totalCost: number;
  inputCost: number;
  outputCost: number;
  cacheReadCost: number;
  cacheWriteCost: number;
  missingCostEntries: number;
}

interface MessageCounts {
  total: number;
  user: number;
  assistant: number;
  toolCalls: number;
  toolResults: number;
  errors: number;
}

interface UsageResult {
  updatedAt: number;
  startDate: string;
  endDate: string;
  sessions: {
    key: string;
    sessionId?: string;
    channel?: string;
    chatType?: string;
    label?: string;
    usage: (Totals & { messageCounts: MessageCounts }) | null;
  }[];
  totals: Totals;
  actions: { allowed: number; review: number; blocked: number; total: number };
  aggregates: {
    messages: MessageCounts;
    tools: { totalCalls: number };
    byModel: { provider?: string; model?: string; count: number; totals: Totals }[];
    byProvider: { provider?: string; count: number; totals: Totals }[];
    byAgent: { agentId: string; totals: Totals }[];
    byChannel: { channel: string; totals: Totals }[];
    daily: { date: string; tokens: number; messages: number }[];
  };
}

const TOTALS_KEYS = [
  'cacheRead',
  'cacheReadCost',
  'cacheWrite',
  'cacheWriteCost',
  'input',
  'inputCost',
  'missingCostEntries',
  'output',
  'outputCost',
  'totalCost',
  'totalTokens',
];

// ---------------------------------------------------------------------------------------------
// Helpers

/** A fresh bare session key (`<name>-<8 hex>`), canonical as `agent:main:<that>`. */
function freshKey(name: string): string {
  return `${name}-${randomUUID().slice(0, 8)}`;
}

const canonical = (bare: string) => `agent:main:${bare}`;

function payloadOf(f: Frame): Record<string, unknown> {
  return (f.payload ?? {}) as Record<string, unknown>;
}

function isChatEnd(f: Frame, runId: string): boolean {
  if (f.type !== 'event' || f.event !== 'chat') return false;
  const p = payloadOf(f);
  return p.runId === runId && (p.state === 'final' || p.state === 'error' || p.state === 'aborted');
}

/** Sends `chat.send` and returns its run id once the ack is in (the turn may still run). */
async function startTurn(client: RawGatewayClient, sessionKey: string, message: string) {
  const runId = randomUUID();
  const from = client.frames.length;
  const ack = await client.request('chat.send', { sessionKey, message, idempotencyKey: runId });
  expect(ack.ok, JSON.stringify(ack.error)).toBe(true);
  expect(ack.payload).toMatchObject({ runId, status: 'started' });
  return { runId, from };
}

/** Waits for the `chat` event that ends `runId` and returns its payload. */
async function turnEnd(client: RawGatewayClient, runId: string, from = 0) {
  const end = await client.waitFor((f) => isChatEnd(f, runId), 15_000, from);
  return payloadOf(end);
}

/** One whole chat turn: `chat.send`, then its `chat` final. */
async function turn(sessionKey: string, message: string): Promise<string> {
  const { runId, from } = await startTurn(admin, sessionKey, message);
  const end = await turnEnd(admin, runId, from);
  expect(end.state, JSON.stringify(end)).toBe('final');
  return runId;
}

async function list(params: Record<string, unknown>, client = admin): Promise<ListResult> {
  return client.call<ListResult>('sessions.list', params);
}

/** The one row of `key` (searched by its unique part), or undefined. */
async function rowOf(bare: string, extra: Record<string, unknown> = {}): Promise<Row | undefined> {
  const res = await list({ search: bare, archived: 'all', ...extra });
  return res.sessions.find((r) => r.key === canonical(bare));
}

async function patch(params: Record<string, unknown>, client = admin): Promise<PatchResult> {
  return client.call<PatchResult>('sessions.patch', params);
}

async function entryOf(key: string): Promise<Entry> {
  return (await admin.call<{ entry: Entry }>('sessions.get', { key })).entry;
}

async function history(sessionKey: string): Promise<{ sessionId?: string; texts: string[] }> {
  const res = await admin.call<{ sessionId?: string; messages: ChatMessage[] }>('chat.history', {
    sessionKey,
  });
  return {
    ...(res.sessionId === undefined ? {} : { sessionId: res.sessionId }),
    texts: res.messages.map((m) => `${m.role}: ${m.content.map((c) => c.text).join('')}`),
  };
}

/** A subagent session as Warden-side code creates it (the only way `spawnedBy` is set). */
async function createSubagent(
  parent: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const key = `agent:main:subagent:${randomUUID().slice(0, 12)}`;
  const res = await acp.call('session.create', {
    key,
    settings: {
      openclaw_key: key,
      openclaw: {
        sessionId: randomUUID(),
        spawnedBy: parent,
        spawnDepth: 1,
        lifecycleRevision: '0',
        ...extra,
      },
    },
  });
  expect(res.error, JSON.stringify(res.error)).toBeUndefined();
  return key;
}

/** POSTs a signed message to the webhook channel `hook` (docs/channels.md). */
async function postHook(
  body: Record<string, unknown>,
): Promise<{ runId: string; sessionKey: string }> {
  const raw = JSON.stringify(body);
  const signature = `sha256=${createHmac('sha256', HOOK_SECRET).update(raw).digest('hex')}`;
  const res = await fetch(`${gw.daemon.url}/channels/webhook/hook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-warden-signature': signature },
    body: raw,
  });
  const out = (await res.json()) as { status: string; runId: string; sessionKey: string };
  expect(res.status, JSON.stringify(out)).toBe(202);
  expect(out.status, JSON.stringify(out)).toBe('accepted');
  return out;
}

function todayUtc(offsetDays = 0): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------

describe('sessions.list (§4.5)', () => {
  it('answers the envelope with rows built from the session and its runs', async () => {
    const bare = freshKey('list-env');
    await turn(bare, 'hello there');
    const before = Date.now();
    const res = await list({ search: bare });
    expect(Object.keys(res).sort()).toEqual(
      [
        'count',
        'defaults',
        'hasMore',
        'limitApplied',
        'nextOffset',
        'offset',
        'path',
        'sessions',
        'totalCount',
        'ts',
      ].sort(),
    );
    expect(res).toMatchObject({
      path: 'warden:sessions',
      count: 1,
      totalCount: 1,
      limitApplied: 200,
      offset: 0,
      nextOffset: null,
      hasMore: false,
      defaults: { modelProvider: 'scripted', model: 'scripted', contextTokens: null },
    });
    expect(Math.abs(res.ts - before)).toBeLessThan(10_000);
    const [row] = res.sessions;
    expect(row).toMatchObject({
      key: canonical(bare),
      kind: 'direct',
      agentId: 'main',
      status: 'done',
      totalTokensFresh: true,
    });
    expect(row!.sessionId).toMatch(UUID);
    expect(row!.inputTokens).toBeGreaterThan(0);
    expect(row!.outputTokens).toBeGreaterThan(0);
    expect(row!.totalTokens).toBe(row!.inputTokens + row!.outputTokens);
    expect(row!.updatedAt).toBeGreaterThanOrEqual(row!.createdAt!);
    // Row extras are opt-in.
    expect(row).not.toHaveProperty('derivedTitle');
    expect(row).not.toHaveProperty('lastMessagePreview');
  });

  it('reports a running turn: status, totalTokensFresh false, activeOnly', async () => {
    const bare = freshKey('list-run');
    const { runId, from } = await startTurn(admin, bare, SLOW);
    const during = await list({ search: bare, activeOnly: true });
    expect(during.count).toBe(1);
    expect(['queued', 'running']).toContain(during.sessions[0]!.status);
    expect(during.sessions[0]!.totalTokensFresh).toBe(false);
    expect((await turnEnd(admin, runId, from)).state).toBe('final');
    const after = await list({ search: bare });
    expect(after.sessions[0]).toMatchObject({ status: 'done', totalTokensFresh: true });
    expect((await list({ search: bare, activeOnly: true })).count).toBe(0);
  });

  it('includeGlobal and includeUnknown add the global and unknown sessions', async () => {
    await patch({ key: 'global' });
    await patch({ key: 'unknown' });
    const kinds = async (params: Record<string, unknown>) =>
      new Map((await list({ limit: 1000, ...params })).sessions.map((r) => [r.key, r.kind]));
    const none = await kinds({});
    expect(none.has('global')).toBe(false);
    expect(none.has('unknown')).toBe(false);
    const global = await kinds({ includeGlobal: true });
    expect(global.get('global')).toBe('global');
    expect(global.has('unknown')).toBe(false);
    const unknown = await kinds({ includeUnknown: true });
    expect(unknown.get('unknown')).toBe('unknown');
    expect(unknown.has('global')).toBe(false);
    const both = await kinds({ includeGlobal: true, includeUnknown: true });
    expect([both.get('global'), both.get('unknown')]).toEqual(['global', 'unknown']);
    // An agent filter never matches the sentinels.
    const main = await kinds({ includeGlobal: true, includeUnknown: true, agentId: 'main' });
    expect(main.has('global') || main.has('unknown')).toBe(false);
  });

  it("agentId selects one agent's sessions", async () => {
    const tag = randomUUID().slice(0, 8);
    await patch({ key: `agent:ops:agent-${tag}` });
    await patch({ key: `agent-${tag}` });
    const ops = await list({ agentId: 'ops', search: tag });
    expect(ops.sessions.map((r) => [r.key, r.agentId])).toEqual([
      [`agent:ops:agent-${tag}`, 'ops'],
    ]);
    const main = await list({ agentId: 'main', search: tag });
    expect(main.sessions.map((r) => r.key)).toEqual([canonical(`agent-${tag}`)]);
    expect((await list({ search: tag })).totalCount).toBe(2);
    expectInvalidRequest(await admin.request('sessions.list', { agentId: '' }), /agentId/);
  });

  it('search matches the key, the label and the derived title, ignoring case', async () => {
    const word = `zebra${randomUUID().slice(0, 6)}`;
    const byTitle = freshKey('search-t');
    await turn(byTitle, `Quarterly ${word.toUpperCase()} numbers`);
    const byLabel = freshKey('search-l');
    await patch({ key: byLabel, label: `Label ${word}-L` });
    const hits = await list({ search: word });
    expect(hits.sessions.map((r) => r.key).sort()).toEqual(
      [canonical(byTitle), canonical(byLabel)].sort(),
    );
    expect((await list({ search: `${word}-l`.toUpperCase() })).sessions.map((r) => r.key)).toEqual([
      canonical(byLabel),
    ]);
    expect((await list({ search: byTitle.toUpperCase() })).sessions.map((r) => r.key)).toEqual([
      canonical(byTitle),
    ]);
    expectInvalidRequest(await admin.request('sessions.list', { search: 42 }), /search/);
  });

  it('label selects exactly the labelled session and is validated like a patch label', async () => {
    const bare = freshKey('label-f');
    const label = `Only ${bare}`;
    await patch({ key: bare, label });
    await patch({ key: freshKey('label-g'), label: `${label} too` });
    const res = await list({ label });
    expect(res.sessions.map((r) => [r.key, r.label, r.displayName])).toEqual([
      [canonical(bare), label, label],
    ]);
    expectInvalidRequest(
      await admin.request('sessions.list', { label: 'x'.repeat(65) }),
      /label.*at most 64 characters.*never truncated/,
    );
    expectInvalidRequest(await admin.request('sessions.list', { label: '   ' }), /label/);
  });

  it('spawnedBy selects the subagents of a parent', async () => {
    const parent = canonical(freshKey('parent'));
    const a = await createSubagent(parent);
    const b = await createSubagent(parent);
    await createSubagent(canonical(freshKey('other-parent')));
    const res = await list({ spawnedBy: parent });
    expect(res.sessions.map((r) => r.key).sort()).toEqual([a, b].sort());
    for (const row of res.sessions) expect(row).toMatchObject({ spawnedBy: parent, spawnDepth: 1 });
    expect((await list({ spawnedBy: parent, excludeSubagents: true })).count).toBe(0);
    expectInvalidRequest(await admin.request('sessions.list', { spawnedBy: '' }), /spawnedBy/);
  });

  it('includeDerivedTitles and includeLastMessage add the title and the last reply', async () => {
    const bare = freshKey('extras');
    const message =
      'Please summarise the incident report from last night and list every follow-up item';
    await turn(bare, message);
    const row = (await list({ search: bare, includeDerivedTitles: true, includeLastMessage: true }))
      .sessions[0]!;
    // The first user message, cut at a word boundary to at most 60 characters.
    expect(row.derivedTitle!.length).toBeLessThanOrEqual(60);
    expect(row.derivedTitle!.endsWith('…')).toBe(true);
    expect(message.startsWith(row.derivedTitle!.slice(0, -1).trimEnd())).toBe(true);
    expect(row.lastMessagePreview).toBe(`[scripted] ${message}`);
    // A session without messages has a fallback title and no preview.
    const quiet = freshKey('extras-q');
    await patch({ key: quiet, label: `Quiet ${quiet}` });
    const q = (await list({ search: quiet, includeDerivedTitles: true, includeLastMessage: true }))
      .sessions[0]!;
    expect(q.derivedTitle).toBe(`Quiet ${quiet}`);
    expect(q).not.toHaveProperty('lastMessagePreview');
  });

  it('delivery-context hints: a channel session reports where it was reached', async () => {
    const peer = freshKey('peer');
    const { runId, sessionKey } = await postHook({
      messageId: randomUUID(),
      from: peer,
      accountId: 'acct-7',
      threadId: 'thread-3',
      text: 'hello from the channel',
    });
    expect(sessionKey).toBe(`agent:main:webhook:acct-7:direct:${peer}`);
    expect((await turnEnd(admin, runId)).state).toBe('final');
    const row = (await list({ search: peer })).sessions[0]!;
    expect(row).toMatchObject({
      key: sessionKey,
      channel: 'webhook',
      chatType: 'direct',
      lastAccountId: 'acct-7',
      deliveryContext: { channel: 'webhook', to: peer, accountId: 'acct-7', threadId: 'thread-3' },
    });
    // A group message: the row is a group row, and replies go to the group.
    const group = freshKey('group');
    const grouped = await postHook({
      messageId: randomUUID(),
      from: 'someone',
      chatType: 'group',
      groupId: group,
      mentioned: true,
      text: 'hello group',
    });
    expect((await turnEnd(admin, grouped.runId)).state).toBe('final');
    const groupRow = (await list({ search: group })).sessions[0]!;
    expect(groupRow).toMatchObject({
      key: grouped.sessionKey,
      kind: 'group',
      chatType: 'group',
      lastAccountId: 'hook',
      deliveryContext: { channel: 'webhook', to: group, accountId: 'hook' },
    });
    // Hints a Warden-side creator stored on the entry are reported as they are.
    const parent = canonical(freshKey('hint-parent'));
    const sub = await createSubagent(parent, {
      lastAccountId: 'acct-9',
      deliveryContext: { channel: 'webhook', to: 'someone', accountId: 'acct-9' },
    });
    expect((await list({ spawnedBy: parent })).sessions[0]).toMatchObject({
      key: sub,
      lastAccountId: 'acct-9',
      deliveryContext: { channel: 'webhook', to: 'someone', accountId: 'acct-9' },
    });
  });

  it('pages the way `openclaw sessions delete` does (limit 200 while hasMore)', async () => {
    const tag = `page-${randomUUID().slice(0, 8)}`;
    const made = Array.from({ length: 205 }, (_, i) => `${tag}-${String(i).padStart(3, '0')}`);
    await Promise.all(made.map((key) => patch({ key })));
    const seen: string[] = [];
    let offset = 0;
    let pages = 0;
    let totalCount = -1;
    for (;;) {
      const res = await list({
        limit: 200,
        offset,
        archived: 'all',
        includeGlobal: true,
        includeUnknown: true,
        configuredAgentsOnly: true,
      });
      pages++;
      expect(Array.isArray(res.sessions)).toBe(true);
      expect(res.offset).toBe(offset);
      expect(res.count).toBe(res.sessions.length);
      if (totalCount < 0) totalCount = res.totalCount;
      expect(res.totalCount).toBe(totalCount);
      seen.push(...res.sessions.map((r) => r.key));
      if (!res.hasMore) {
        expect(res.nextOffset).toBeNull();
        break;
      }
      expect(res.count).toBe(200);
      expect(typeof res.nextOffset).toBe('number');
      expect(res.nextOffset!).toBeGreaterThan(offset);
      offset = res.nextOffset!;
      expect(pages).toBeLessThan(10);
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(seen.length).toBe(totalCount);
    expect(new Set(seen).size).toBe(seen.length);
    for (const key of made) expect(seen).toContain(canonical(key));

    // Small pages over a filter: 50 + 50 + 50 + 50 + 5, newest first, no key twice.
    const sizes: number[] = [];
    const filtered: string[] = [];
    for (let next: number | null = 0; next !== null;) {
      const res: ListResult = await list({ search: tag, limit: 50, offset: next });
      sizes.push(res.count);
      filtered.push(...res.sessions.map((r) => r.key));
      expect(res.totalCount).toBe(205);
      next = res.hasMore ? res.nextOffset : null;
    }
    expect(sizes).toEqual([50, 50, 50, 50, 5]);
    expect(new Set(filtered).size).toBe(205);
  }, 60_000);

  it('clamps limit to 1..1000 and refuses bad paging params', async () => {
    expect((await list({ limit: 5000, search: 'nothing-matches-this' })).limitApplied).toBe(1000);
    expect((await list({ limit: 0, search: 'nothing-matches-this' })).limitApplied).toBe(1);
    const past = await list({ offset: 1_000_000 });
    expect(past).toMatchObject({ count: 0, sessions: [], hasMore: false, nextOffset: null });
    expectInvalidRequest(await admin.request('sessions.list', { offset: -1 }), /offset/);
    expectInvalidRequest(await admin.request('sessions.list', { limit: 'ten' }), /limit/);
    expectInvalidRequest(await admin.request('sessions.list', { archived: 'some' }), /archived/);
    expectInvalidRequest(await admin.request('sessions.list', []), /sessions\.list.*object/);
    // Filters of newer clients that Warden does not evaluate are accepted, not refused.
    const newer = await admin.request('sessions.list', { projectId: 'p1', involvingMe: true });
    expect(newer.ok, JSON.stringify(newer.error)).toBe(true);
    // Absent, {} and null params are alike (§4).
    for (const params of [undefined, null, {}]) {
      const res = await admin.request('sessions.list', params);
      expect(res.ok, JSON.stringify(res.error)).toBe(true);
      expect(payloadOf(res).limitApplied).toBe(200);
    }
  });
});

describe('sessions.preview (§4.6)', () => {
  it('keeps the requested keys, in order, and reports ok, empty and missing', async () => {
    const talked = freshKey('prev');
    await turn(talked, 'first words');
    const quiet = freshKey('prev-q');
    await patch({ key: quiet });
    const missing = freshKey('prev-m');
    const keys = [talked, canonical(talked), quiet, missing, talked];
    const res = await admin.call<{
      ts: number;
      previews: { key: string; status: string; items: { role: string; text: string }[] }[];
    }>('sessions.preview', { keys });
    expect(typeof res.ts).toBe('number');
    expect(res.previews.map((p) => [p.key, p.status])).toEqual([
      [talked, 'ok'],
      [canonical(talked), 'ok'],
      [quiet, 'empty'],
      [missing, 'missing'],
      [talked, 'ok'],
    ]);
    expect(res.previews[0]!.items).toEqual([
      { role: 'user', text: 'first words' },
      { role: 'assistant', text: '[scripted] first words' },
    ]);
    expect(res.previews[2]!.items).toEqual([]);
    expect(res.previews[3]!.items).toEqual([]);
  });

  it('limit and maxChars bound the items', async () => {
    const bare = freshKey('prev-l');
    await turn(bare, 'one two three four five six seven eight nine ten eleven');
    const res = await admin.call<{ previews: { items: { role: string; text: string }[] }[] }>(
      'sessions.preview',
      { keys: [bare], limit: 1, maxChars: 20 },
    );
    const items = res.previews[0]!.items;
    expect(items.length).toBe(1);
    expect(items[0]!.role).toBe('assistant');
    expect(items[0]!.text.length).toBeLessThanOrEqual(20);
    expect(items[0]!.text.startsWith('[scripted]')).toBe(true);
  });

  it('refuses bad params with a message naming them', async () => {
    const r = (params: unknown) => admin.request('sessions.preview', params);
    expectInvalidRequest(await r({}), /keys/);
    expectInvalidRequest(await r({ keys: [] }), /keys.*at least one/);
    expectInvalidRequest(
      await r({ keys: Array.from({ length: 65 }, (_, i) => `k${i}`) }),
      /keys.*at most 64/,
    );
    expectInvalidRequest(await r({ keys: ['a'], limit: 0 }), /limit/);
    expectInvalidRequest(await r({ keys: ['a'], maxChars: 19 }), /maxChars/);
    expectInvalidRequest(await r({ keys: 'a' }), /keys/);
  });
});

describe('sessions.resolve (§4.7)', () => {
  it('resolves by key, label and sessionId', async () => {
    const bare = freshKey('res');
    const label = `Resolve ${bare}`;
    const { entry } = await patch({ key: bare, label, boardFace: 'dashboard' });
    const expected = {
      ok: true,
      key: canonical(bare),
      agentId: 'main',
      displayName: label,
      boardFace: 'dashboard',
    };
    expect(await admin.call('sessions.resolve', { key: bare })).toEqual(expected);
    expect(await admin.call('sessions.resolve', { key: canonical(bare) })).toEqual(expected);
    expect(await admin.call('sessions.resolve', { label })).toEqual(expected);
    expect(await admin.call('sessions.resolve', { sessionId: entry.sessionId })).toEqual(expected);
    expect(await admin.call('sessions.resolve', { shortId: entry.sessionId.slice(0, 13) })).toEqual(
      expected,
    );
  });

  it('an ambiguous selector answers {ok:false, candidates}', async () => {
    const parent = canonical(freshKey('amb'));
    const a = await createSubagent(parent);
    const b = await createSubagent(parent);
    const res = await admin.call<{ ok: boolean; candidates: { key: string; sessionId: string }[] }>(
      'sessions.resolve',
      { spawnedBy: parent },
    );
    expect(res.ok).toBe(false);
    expect(res.candidates.map((c) => c.key).sort()).toEqual([a, b].sort());
    for (const c of res.candidates) expect(c.sessionId).toMatch(UUID);
    // One child left: it resolves.
    const only = canonical(freshKey('amb-1'));
    const c = await createSubagent(only);
    expect(await admin.call('sessions.resolve', { spawnedBy: only })).toMatchObject({
      ok: true,
      key: c,
    });
  });

  it('a missing session is INVALID_REQUEST, or {ok:false} with allowMissing', async () => {
    const bare = freshKey('res-missing');
    expectInvalidRequest(
      await admin.request('sessions.resolve', { key: bare }),
      new RegExp(`No session found: key "${canonical(bare)}"`),
    );
    expectInvalidRequest(
      await admin.request('sessions.resolve', { label: `No such ${bare}` }),
      /No session found: label/,
    );
    expect(await admin.call('sessions.resolve', { key: bare, allowMissing: true })).toEqual({
      ok: false,
    });
    expect(
      await admin.call('sessions.resolve', { sessionId: randomUUID(), allowMissing: true }),
    ).toEqual({ ok: false });
  });

  it('refuses a call without a selector or with a bad label', async () => {
    expectInvalidRequest(await admin.request('sessions.resolve', {}), /selector/);
    expectInvalidRequest(
      await admin.request('sessions.resolve', { label: 'y'.repeat(65) }),
      /label.*at most 64/,
    );
    expectInvalidRequest(
      await admin.request('sessions.resolve', { key: 'agent::x' }),
      /sessions\.resolve/,
    );
  });
});

describe('sessions.describe and sessions.get (§4.19)', () => {
  it('describe answers one row, get the stored entry with resolved settings', async () => {
    const bare = freshKey('desc');
    await turn(bare, 'describe me');
    await patch({ key: bare, thinkingLevel: 'high' });
    const d = await admin.call<{ ok: boolean; key: string; session: Row }>('sessions.describe', {
      key: bare,
    });
    expect(d).toMatchObject({ ok: true, key: canonical(bare) });
    expect(d.session).toMatchObject({
      key: canonical(bare),
      status: 'done',
      thinkingLevel: 'high',
    });
    const g = await admin.call<PatchResult & { entry: Entry & { updatedAt: number } }>(
      'sessions.get',
      { sessionKey: bare },
    );
    expect(g).toMatchObject({
      ok: true,
      key: canonical(bare),
      path: 'warden:sessions',
      entry: { thinkingLevel: 'high' },
      resolved: { thinkingLevel: 'high', modelProvider: 'scripted', model: 'scripted' },
    });
    expect(typeof g.entry.updatedAt).toBe('number');
    for (const method of ['sessions.describe', 'sessions.get']) {
      expectInvalidRequest(
        await admin.request(method, { key: freshKey('nope') }),
        /No session found/,
      );
      expectInvalidRequest(await admin.request(method, {}), /key/);
    }
  });
});

describe('sessions.patch (§4.8, seed parity)', () => {
  /** [field, value sent, value stored] for every tuning field, aliases included. */
  const FIELDS: [string, unknown, unknown][] = [
    ['autoLabel', 'Auto title', 'Auto title'],
    ['icon', '🦊', '🦊'],
    ['color', 'Blue', 'blue'],
    ['category', 'ops', 'ops'],
    ['boardFace', 'dashboard', 'dashboard'],
    ['boardPresentation', 'expanded', 'expanded'],
    ['statusNote', '  waiting on CI  ', 'waiting on CI'],
    ['attention', 'flag', 'flag'],
    ['pinned', true, true],
    ['archived', true, true],
    ['unread', true, true],
    ['ttlMinutes', 30, 30],
    ['agentRuntime', 'codex', 'codex'],
    ['contextWindow', 200000, '200000'],
    ['thinkingLevel', 'med', 'medium'],
    ['fastMode', 'auto', 'auto'],
    ['verboseLevel', 'full', 'full'],
    ['traceLevel', 'unfiltered', 'raw'],
    ['reasoningLevel', 'streaming', 'stream'],
    ['responseUsage', 'on', 'tokens'],
    ['elevatedLevel', 'prompt', 'ask'],
    ['execHost', 'sandbox', 'sandbox'],
    ['execSecurity', 'allowlist', 'allowlist'],
    ['execAsk', 'on-miss', 'on-miss'],
    ['execNode', 'node-1', 'node-1'],
    ['permissionMode', 'workspace', 'workspace'],
    ['sandboxMode', 'off', 'off'],
    [
      'toolOverrides',
      { webSearch: false, skills: { pdf: true } },
      { webSearch: false, skills: { pdf: true } },
    ],
    ['sendPolicy', 'allow', 'allow'],
    ['groupActivation', 'always', 'always'],
    ['queueMode', 'collect', 'collect'],
  ];

  it('sets every tuning field to its canonical value, and null clears each', async () => {
    const bare = freshKey('tune');
    const label = `Tuned ${bare}`;
    const sent = Object.fromEntries(FIELDS.map(([f, v]) => [f, v]));
    const res = await patch({ key: bare, label, model: 'openai/gpt-4o', ...sent });
    for (const [field, , stored] of FIELDS) expect(res.entry[field], field).toEqual(stored);
    expect(res.entry).toMatchObject({ label, model: 'gpt-4o', modelProvider: 'openai' });
    expect(res.resolved).toMatchObject({
      modelProvider: 'openai',
      model: 'gpt-4o',
      agentRuntime: 'codex',
      runtimeSelectionLocked: true,
      thinkingLevel: 'medium',
      fastMode: 'auto',
      reasoningLevel: 'stream',
      responseUsage: 'tokens',
      execSecurity: 'allowlist',
      permissionMode: 'workspace',
      sendPolicy: 'allow',
      groupActivation: 'always',
      queueMode: 'collect',
    });
    // The row shows what the entry holds.
    expect(await rowOf(bare)).toMatchObject({ label, thinkingLevel: 'medium', archived: true });

    const cleared = Object.fromEntries(FIELDS.map(([f]) => [f, null]));
    const after = await patch({ key: bare, label: null, model: null, ...cleared });
    expect(Object.keys(after.entry).sort()).toEqual(['lifecycleRevision', 'sessionId']);
    expect(after.entry.sessionId).toBe(res.entry.sessionId);
    expect(after.resolved).toEqual({
      modelProvider: 'scripted',
      model: 'scripted',
      agentRuntime: null,
      runtimeSelectionLocked: false,
    });
    expect(await entryOf(bare)).not.toHaveProperty('thinkingLevel');
  });

  it('"off" clears reasoningLevel and responseUsage', async () => {
    const bare = freshKey('off');
    const set = await patch({ key: bare, reasoningLevel: 'on', responseUsage: 'full' });
    expect(set.entry).toMatchObject({ reasoningLevel: 'on', responseUsage: 'full' });
    const off = await patch({ key: bare, reasoningLevel: 'off', responseUsage: 'off' });
    expect(off.entry).not.toHaveProperty('reasoningLevel');
    expect(off.entry).not.toHaveProperty('responseUsage');
    expect(off.resolved).not.toHaveProperty('reasoningLevel');
    expect(off.resolved).not.toHaveProperty('responseUsage');
    // Elsewhere "off" is a value, not a clear.
    expect((await patch({ key: bare, thinkingLevel: 'off' })).entry.thinkingLevel).toBe('off');
  });

  it('refuses bad values with a message naming the field, and changes nothing', async () => {
    const bare = freshKey('bad');
    const { entry } = await patch({ key: bare, label: `Bad ${bare}` });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ thinkingLevel: 'extreme' }, /thinkingLevel/],
      [{ color: 'magenta' }, /color/],
      [{ ttlMinutes: 0 }, /ttlMinutes/],
      [{ ttlMinutes: 121 }, /ttlMinutes/],
      [{ fastMode: 'sometimes' }, /fastMode/],
      [{ pinned: 'yes' }, /pinned/],
      [{ responseUsage: 'verbose' }, /responseUsage/],
      [{ reasoningLevel: 'loud' }, /reasoningLevel/],
      [{ execSecurity: 'none' }, /execSecurity/],
      [{ permissionMode: 'root' }, /permissionMode/],
      [{ toolOverrides: { bogus: true } }, /toolOverrides/],
      [{ statusNote: 'n'.repeat(121) }, /statusNote/],
      [{ label: '' }, /label/],
      [{ model: 42 }, /model/],
      [{ sendPolicy: 'inherit' }, /sendPolicy.*inherit/],
      [{ spawnedBy: canonical('someone') }, /spawnedBy.*immutable/],
      [{ spawnDepth: 1 }, /spawnDepth.*immutable/],
    ];
    for (const [fields, names] of cases)
      expectInvalidRequest(await admin.request('sessions.patch', { key: bare, ...fields }), names);
    expect(await entryOf(bare)).toEqual({ ...entry, updatedAt: expect.any(Number) as number });
  });

  it('labels of at most 64 characters are stored exactly; longer ones are refused, never cut', async () => {
    const bare = freshKey('label-prop');
    await patch({ key: bare, label: `Start ${bare}` });
    const unit = fc.constantFrom('a', 'Z', '7', '-', '_', 'é', '日', ' ');
    await fc.assert(
      fc.asyncProperty(fc.string({ unit, maxLength: 100 }), async (body) => {
        const label = `L${body}L`;
        const before = (await entryOf(bare)).label;
        const res = await admin.request('sessions.patch', { key: bare, label });
        if (label.length <= 64) {
          expect(res.ok, JSON.stringify(res.error)).toBe(true);
          expect((payloadOf(res).entry as Entry).label).toBe(label);
        } else {
          expectInvalidRequest(res, /label.*at most 64 characters.*never truncated/);
          expect((await entryOf(bare)).label).toBe(before);
        }
      }),
      { numRuns: 30 },
    );
    // Surrounding whitespace is trimmed, not counted.
    const padded = `  ${'p'.repeat(64)}  `;
    expect((await patch({ key: bare, label: padded })).entry.label).toBe('p'.repeat(64));
  }, 60_000);

  it('labels are unique across sessions', async () => {
    const a = freshKey('uniq-a');
    const b = freshKey('uniq-b');
    const label = `Shared ${a}`;
    await patch({ key: a, label });
    expectInvalidRequest(
      await admin.request('sessions.patch', { key: b, label }),
      new RegExp(`label already in use by ${canonical(a)}`),
    );
    expect(await entryOf(b)).not.toHaveProperty('label');
    // The holder may set it again; once it lets go, another session may take it.
    expect((await patch({ key: a, label })).entry.label).toBe(label);
    await patch({ key: a, label: null });
    expect((await patch({ key: b, label })).entry.label).toBe(label);
  });

  it('spawnedBy and spawnDepth stay immutable on a subagent session', async () => {
    const parent = canonical(freshKey('imm'));
    const sub = await createSubagent(parent);
    expectInvalidRequest(
      await admin.request('sessions.patch', { key: sub, spawnedBy: parent }),
      /spawnedBy.*immutable/,
    );
    expectInvalidRequest(
      await admin.request('sessions.patch', { key: sub, spawnDepth: 2 }),
      /spawnDepth.*immutable/,
    );
    // Other fields of a subagent session can be patched; the lineage is kept.
    const res = await patch({ key: sub, label: `Child ${sub.slice(-12)}` });
    expect(res.entry).toMatchObject({ spawnedBy: parent, spawnDepth: 1 });
  });

  it('accepts key or its alias sessionKey', async () => {
    const bare = freshKey('alias');
    const viaAlias = await patch({ sessionKey: bare, pinned: true });
    expect(viaAlias.key).toBe(canonical(bare));
    expect((await patch({ key: bare, sessionKey: bare, unread: true })).entry).toMatchObject({
      pinned: true,
      unread: true,
    });
    expectInvalidRequest(
      await admin.request('sessions.patch', { key: bare, sessionKey: `${bare}-x`, pinned: false }),
      /sessionKey/,
    );
    expectInvalidRequest(await admin.request('sessions.patch', { pinned: false }), /key/);
    expectInvalidRequest(
      await admin.request('sessions.patch', { key: 'agent:main:' }),
      /sessions\.patch/,
    );
  });

  it('answers {ok, path, key, entry, resolved} and creates a missing session', async () => {
    const bare = freshKey('env');
    const first = await patch({ key: bare });
    expect(Object.keys(first).sort()).toEqual(['entry', 'key', 'ok', 'path', 'resolved']);
    expect(first).toMatchObject({ ok: true, path: 'warden:sessions', key: canonical(bare) });
    expect(first.entry.sessionId).toMatch(UUID);
    expect(first.resolved).toMatchObject({
      modelProvider: 'scripted',
      model: 'scripted',
      agentRuntime: null,
      runtimeSelectionLocked: false,
    });
    expect((await rowOf(bare))?.kind).toBe('direct');
    const second = await patch({ key: bare, pinned: true });
    expect(Number(second.entry.lifecycleRevision)).toBe(Number(first.entry.lifecycleRevision) + 1);
    expect(second.entry.sessionId).toBe(first.entry.sessionId);
  });

  it('expectedSessionId and expectedLifecycleRevision guard against a change in between', async () => {
    const bare = freshKey('guard');
    const { entry } = await patch({ key: bare });
    expectInvalidRequest(
      await admin.request('sessions.patch', {
        key: bare,
        expectedSessionId: randomUUID(),
        pinned: true,
      }),
      /changed before patch/,
    );
    expectInvalidRequest(
      await admin.request('sessions.patch', {
        key: bare,
        expectedLifecycleRevision: String(Number(entry.lifecycleRevision) + 5),
        pinned: true,
      }),
      /changed before patch/,
    );
    const ok = await patch({
      key: bare,
      expectedSessionId: entry.sessionId,
      expectedLifecycleRevision: entry.lifecycleRevision,
      pinned: true,
    });
    expect(ok.entry.pinned).toBe(true);
  });

  it('sendPolicy allow|deny|null; deny blocks chat.send and sessions.send', async () => {
    const bare = freshKey('policy');
    expect((await patch({ key: bare, sendPolicy: 'deny' })).entry.sendPolicy).toBe('deny');
    expect((await rowOf(bare))?.sendPolicy).toBe('deny');
    const blocked = await admin.request('chat.send', {
      sessionKey: bare,
      message: 'are you there?',
      idempotencyKey: randomUUID(),
    });
    expectInvalidRequest(blocked, /^send blocked by session policy$/);
    expectInvalidRequest(
      await admin.request('sessions.send', { key: bare, message: 'and now?' }),
      /^send blocked by session policy$/,
    );
    expect((await history(bare)).texts).toEqual([]);
    const cleared = await patch({ key: bare, sendPolicy: null });
    expect(cleared.entry).not.toHaveProperty('sendPolicy');
    await turn(bare, 'inherited');
    expect((await patch({ key: bare, sendPolicy: 'allow' })).entry.sendPolicy).toBe('allow');
    await turn(bare, 'allowed');
    expect((await history(bare)).texts).toEqual([
      'user: inherited',
      'assistant: [scripted] inherited',
      'user: allowed',
      'assistant: [scripted] allowed',
    ]);
    expectInvalidRequest(
      await admin.request('sessions.patch', { key: bare, sendPolicy: 'inherit' }),
      /sendPolicy.*'inherit' is not accepted/,
    );
  });

  it('scope per call: write may patch presentation and model fields, admin fields need admin', async () => {
    const bare = freshKey('scope');
    const ok = await patch(
      {
        key: bare,
        label: `Writer ${bare}`,
        pinned: true,
        color: 'green',
        thinkingLevel: 'low',
        fastMode: true,
        permissionMode: 'workspace',
      },
      writer,
    );
    expect(ok.entry).toMatchObject({ label: `Writer ${bare}`, permissionMode: 'workspace' });
    // A param key of a newer client is ignored and never raises the scope.
    expect((await patch({ key: bare, unread: true, someNewField: 1 }, writer)).entry.unread).toBe(
      true,
    );
    for (const fields of [
      { execSecurity: 'full' },
      { sendPolicy: 'deny' },
      { elevatedLevel: 'on' },
      { permissionMode: 'full' },
      // Decided on the parsed value: an alias of `full` is `full`.
      { permissionMode: ' Full ' },
      { label: `Writer2 ${bare}`, execAsk: 'always' },
    ])
      expectMissingScope(
        await writer.request('sessions.patch', { key: bare, ...fields }),
        'operator.admin',
      );
    expect(await entryOf(bare)).not.toHaveProperty('execSecurity');
    expect((await entryOf(bare)).permissionMode).toBe('workspace');
    expectMissingScope(
      await reader.request('sessions.patch', { key: bare, label: 'Reader' }),
      'operator.write',
    );
    // An admin client may patch them.
    expect((await patch({ key: bare, execSecurity: 'full' })).entry.execSecurity).toBe('full');
  });

  it("a write client's bad label is INVALID_REQUEST naming the label, not a missing admin scope (scopes.ts)", async () => {
    // OpenClaw decides the scope by the fields touched (§2.6); `label` is a write field, so
    // the answer is the params error. Warden's sessionsPatchScope asks for admin whenever the
    // params do not parse, which hides the real problem from write clients.
    const bare = freshKey('scope-bad');
    await patch({ key: bare }, writer);
    expectInvalidRequest(
      await writer.request('sessions.patch', { key: bare, label: 'w'.repeat(65) }),
      /label.*at most 64/,
    );
  });
});

describe('sessions.reset (§4.9)', () => {
  it('rotates sessionId, keeps the overrides, and chat.history starts empty', async () => {
    const bare = freshKey('reset');
    await turn(bare, 'before the reset');
    const { entry } = await patch({ key: bare, label: `Reset ${bare}`, thinkingLevel: 'high' });
    expect((await history(bare)).texts.length).toBe(2);
    const res = await admin.call<PatchResult & { reason: string }>('sessions.reset', {
      key: bare,
      reason: 'new',
    });
    expect(res).toMatchObject({ ok: true, key: canonical(bare), reason: 'new' });
    expect(res.entry.sessionId).toMatch(UUID);
    expect(res.entry.sessionId).not.toBe(entry.sessionId);
    expect(res.entry).toMatchObject({ label: `Reset ${bare}`, thinkingLevel: 'high' });
    expect(res.resolved).toMatchObject({ thinkingLevel: 'high', model: 'scripted' });
    expect(await history(bare)).toEqual({ sessionId: res.entry.sessionId, texts: [] });
    expect((await rowOf(bare))?.sessionId).toBe(res.entry.sessionId);
    await turn(bare, 'after the reset');
    expect((await history(bare)).texts).toEqual([
      'user: after the reset',
      'assistant: [scripted] after the reset',
    ]);
    // The old sessionId no longer resolves; the new one does.
    expect(
      await admin.call('sessions.resolve', { sessionId: entry.sessionId, allowMissing: true }),
    ).toEqual({ ok: false });
    expect(await admin.call('sessions.resolve', { sessionId: res.entry.sessionId })).toMatchObject({
      ok: true,
      key: canonical(bare),
    });
  });

  it('reason is new or reset (default reset); anything else is refused', async () => {
    const bare = freshKey('reason');
    await patch({ key: bare });
    expect(await admin.call('sessions.reset', { key: bare })).toMatchObject({ reason: 'reset' });
    expect(await admin.call('sessions.reset', { sessionKey: bare, reason: 'reset' })).toMatchObject(
      { ok: true, reason: 'reset' },
    );
    for (const reason of ['clear', '', 'NEW-ish', 1])
      expectInvalidRequest(await admin.request('sessions.reset', { key: bare, reason }), /reason/);
  });

  it('aborts a running turn', async () => {
    const bare = freshKey('reset-run');
    const { runId, from } = await startTurn(admin, bare, SLOW);
    await admin.call('sessions.reset', { key: bare });
    expect((await turnEnd(admin, runId, from)).state).toBe('aborted');
    expect((await history(bare)).texts).toEqual([]);
    await turn(bare, 'fresh start');
  });

  it('is admin only; unknown keys and stale guards are refused', async () => {
    const bare = freshKey('reset-scope');
    await patch({ key: bare });
    expectMissingScope(await writer.request('sessions.reset', { key: bare }), 'operator.admin');
    expectInvalidRequest(
      await admin.request('sessions.reset', { key: freshKey('reset-none') }),
      /No session found/,
    );
    expectInvalidRequest(await admin.request('sessions.reset', {}), /key/);
    expectInvalidRequest(
      await admin.request('sessions.reset', { key: bare, expectedSessionId: randomUUID() }),
      /changed before reset/,
    );
  });
});

describe('sessions.delete (§4.10)', () => {
  it('an admin deletes: {ok, key, deleted, archived}, and the session is gone', async () => {
    const bare = freshKey('del');
    await turn(bare, 'delete me');
    const res = await admin.call('sessions.delete', { key: bare });
    expect(res).toEqual({ ok: true, key: canonical(bare), deleted: true, archived: [] });
    expect((await list({ search: bare, archived: 'all' })).totalCount).toBe(0);
    expect(await admin.call('sessions.resolve', { key: bare, allowMissing: true })).toEqual({
      ok: false,
    });
    const preview = await admin.call<{ previews: { status: string }[] }>('sessions.preview', {
      keys: [bare],
    });
    expect(preview.previews[0]!.status).toBe('missing');
    expect((await history(bare)).texts).toEqual([]);
    // Deleting again is not an error: nothing was deleted.
    expect(await admin.call('sessions.delete', { key: bare })).toMatchObject({
      ok: true,
      deleted: false,
    });
  });

  it('a write client needs archivedOnly, which deletes archived sessions only', async () => {
    const bare = freshKey('del-w');
    await patch({ key: bare }, writer);
    expectMissingScope(await writer.request('sessions.delete', { key: bare }), 'operator.admin');
    expect(await writer.call('sessions.delete', { key: bare, archivedOnly: true })).toMatchObject({
      ok: true,
      key: canonical(bare),
      deleted: false,
    });
    expect(await rowOf(bare)).toBeDefined();
    await patch({ key: bare, archived: true }, writer);
    expect((await list({ search: bare })).count).toBe(0);
    expect((await list({ search: bare, archived: true })).count).toBe(1);
    expect(await writer.call('sessions.delete', { key: bare, archivedOnly: true })).toEqual({
      ok: true,
      key: canonical(bare),
      deleted: true,
      archived: [],
    });
    expect(await rowOf(bare)).toBeUndefined();
    expectMissingScope(
      await reader.request('sessions.delete', { key: bare, archivedOnly: true }),
      'operator.write',
    );
  });

  it('deletes a session while its turn runs; the key then starts afresh', async () => {
    const bare = freshKey('del-run');
    await startTurn(admin, bare, SLOW);
    expect(await admin.call('sessions.delete', { key: bare })).toEqual({
      ok: true,
      key: canonical(bare),
      deleted: true,
      archived: [],
    });
    expect(await rowOf(bare)).toBeUndefined();
    await turn(bare, 'a new beginning');
    expect((await history(bare)).texts).toEqual([
      'user: a new beginning',
      'assistant: [scripted] a new beginning',
    ]);
  });

  it('accepts deleteTranscript and refuses bad params', async () => {
    const bare = freshKey('del-t');
    await patch({ key: bare });
    expectInvalidRequest(
      await admin.request('sessions.delete', { key: bare, deleteTranscript: 'no' }),
      /deleteTranscript/,
    );
    expectInvalidRequest(await admin.request('sessions.delete', {}), /key/);
    expect(await admin.call('sessions.delete', { key: bare, deleteTranscript: false })).toEqual({
      ok: true,
      key: canonical(bare),
      deleted: true,
      archived: [],
    });
  });
});

describe('sessions.compact (§4.11)', () => {
  it('compacting to 2 lines keeps the last turn in chat.history', async () => {
    const bare = freshKey('compact');
    for (const m of ['turn one', 'turn two', 'turn three']) await turn(bare, m);
    const res = await admin.call('sessions.compact', { key: bare, maxLines: 2 });
    expect(res).toEqual({ ok: true, key: canonical(bare), compacted: true, kept: 2, archived: 4 });
    expect((await history(bare)).texts).toEqual([
      'user: turn three',
      'assistant: [scripted] turn three',
    ]);
    // Nothing is deleted from the log: usage logs still show every turn.
    const logs = await admin.call<{ logs: unknown[] }>('sessions.usage.logs', { key: bare });
    expect(logs.logs.length).toBe(6);
    await turn(bare, 'turn four');
    expect((await history(bare)).texts.length).toBe(4);
  });

  it('maxLines defaults to 400: a short transcript is left alone', async () => {
    const bare = freshKey('compact-d');
    await turn(bare, 'only turn');
    expect(await admin.call('sessions.compact', { key: bare })).toMatchObject({
      ok: true,
      key: canonical(bare),
      compacted: false,
      kept: 2,
    });
    expect((await history(bare)).texts.length).toBe(2);
  });

  it('maxLines must be an integer of at least 1', async () => {
    const bare = freshKey('compact-bad');
    await patch({ key: bare });
    for (const maxLines of [0, -1, 1.5, '2', null])
      expectInvalidRequest(
        await admin.request('sessions.compact', { key: bare, maxLines }),
        /maxLines/,
      );
  });

  it('no-ops answer ok:false inside the payload; compact is admin only', async () => {
    const missing = freshKey('compact-none');
    expect(await admin.call('sessions.compact', { key: missing })).toEqual({
      ok: false,
      key: canonical(missing),
      compacted: false,
      reason: 'no sessionId',
    });
    const quiet = freshKey('compact-q');
    await patch({ key: quiet });
    expect(await admin.call('sessions.compact', { key: quiet })).toMatchObject({
      ok: false,
      compacted: false,
      reason: 'no transcript',
    });
    expectMissingScope(
      await writer.request('sessions.compact', { key: quiet, maxLines: 5 }),
      'operator.admin',
    );
    expectInvalidRequest(await admin.request('sessions.compact', {}), /key/);
  });
});

describe('sessions.usage, .usage.timeseries, .usage.logs (§4.12–§4.14)', () => {
  it("sessions.usage for a key: totals, actions, and every aggregate from the session's runs", async () => {
    const bare = freshKey('usage');
    await turn(bare, 'count these tokens');
    await turn(bare, 'and these too');
    const row = (await rowOf(bare))!;
    const res = await admin.call<UsageResult>('sessions.usage', { key: bare });
    expect(res.endDate).toBe(todayUtc());
    expect(res.startDate).toBe(todayUtc(-29));
    expect(res.sessions.length).toBe(1);
    const usage = res.sessions[0]!.usage!;
    expect(res.sessions[0]).toMatchObject({ key: canonical(bare), sessionId: row.sessionId });
    expect([usage.input, usage.output]).toEqual([row.inputTokens, row.outputTokens]);
    expect(Object.keys(res.totals).sort()).toEqual(TOTALS_KEYS);
    expect(res.totals).toMatchObject({
      input: row.inputTokens,
      output: row.outputTokens,
      totalTokens: row.totalTokens,
      totalCost: 0,
      missingCostEntries: 2,
    });
    expect(res.actions).toEqual({ allowed: 0, review: 0, blocked: 0, total: 0 });
    const counts = { total: 4, user: 2, assistant: 2, toolCalls: 0, toolResults: 0, errors: 0 };
    expect(res.aggregates.messages).toEqual(counts);
    expect(usage.messageCounts).toEqual(counts);
    expect(res.aggregates.tools.totalCalls).toBe(0);
    expect(res.aggregates.byAgent).toEqual([{ agentId: 'main', totals: res.totals }]);
    expect(res.aggregates.byModel).toEqual([
      { provider: 'scripted', model: 'scripted', count: 2, totals: res.totals },
    ]);
    expect(res.aggregates.byProvider).toEqual([
      { provider: 'scripted', count: 2, totals: res.totals },
    ]);
    expect(res.aggregates.byChannel).toEqual([]);
    expect(res.aggregates.daily.length).toBe(30);
    expect(res.aggregates.daily.at(-1)).toMatchObject({
      date: todayUtc(),
      tokens: row.totalTokens,
      messages: 4,
    });
    expect(res.aggregates.daily.slice(0, -1).every((d) => d.tokens === 0)).toBe(true);
  });

  it('attributes a channel session to its channel', async () => {
    const peer = freshKey('usage-peer');
    const { runId, sessionKey } = await postHook({
      messageId: randomUUID(),
      from: peer,
      accountId: 'acct-u',
      text: 'usage via the channel',
    });
    await turnEnd(admin, runId);
    const res = await admin.call<UsageResult>('sessions.usage', { key: sessionKey });
    expect(res.sessions[0]).toMatchObject({
      key: sessionKey,
      channel: 'webhook',
      chatType: 'direct',
    });
    expect(res.aggregates.byChannel).toEqual([{ channel: 'webhook', totals: res.totals }]);
    // Across every session, the channel's share is at least this session's.
    const all = await admin.call<UsageResult>('sessions.usage', { limit: 1000 });
    const hook = all.aggregates.byChannel.find((c) => c.channel === 'webhook')!;
    expect(hook.totals.totalTokens).toBeGreaterThanOrEqual(res.totals.totalTokens);
    expect(all.totals.totalTokens).toBeGreaterThanOrEqual(hook.totals.totalTokens);
    expect(all.sessions.some((s) => s.key === sessionKey)).toBe(true);
  });

  it('date ranges: explicit days, presets, and a range without activity', async () => {
    const bare = freshKey('usage-r');
    await turn(bare, 'ranged');
    const today = await admin.call<UsageResult>('sessions.usage', {
      key: bare,
      startDate: todayUtc(),
      endDate: todayUtc(),
    });
    expect(today.aggregates.daily.map((d) => d.date)).toEqual([todayUtc()]);
    expect(today.totals.totalTokens).toBeGreaterThan(0);
    const week = await admin.call<UsageResult>('sessions.usage', { key: bare, range: '7d' });
    expect(week.aggregates.daily.length).toBe(7);
    expect(week.startDate).toBe(todayUtc(-6));
    const past = await admin.call<UsageResult>('sessions.usage', {
      key: bare,
      startDate: '2020-01-01',
      endDate: '2020-01-03',
    });
    expect(past.aggregates.daily.map((d) => d.date)).toEqual([
      '2020-01-01',
      '2020-01-02',
      '2020-01-03',
    ]);
    expect(past.totals.totalTokens).toBe(0);
    expect(past.aggregates.messages.total).toBe(0);
    const zoned = await admin.call<UsageResult>('sessions.usage', {
      key: bare,
      mode: 'specific',
      utcOffset: '+00:00',
      range: '7d',
    });
    expect(zoned.totals).toEqual(week.totals);
  });

  it('refuses bad dates, ranges and zones with a message naming them', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ startDate: '2026-02-30' }, /startDate.*YYYY-MM-DD/],
      [{ endDate: '05/12/2026' }, /endDate.*YYYY-MM-DD/],
      [
        { startDate: '2026-03-05', endDate: '2026-03-01' },
        /startDate 2026-03-05 is after endDate 2026-03-01/,
      ],
      [{ startDate: '2000-01-01', endDate: '2026-01-01' }, /at most 3660/],
      [{ range: '2w' }, /range/],
      [{ mode: 'local' }, /mode/],
      [{ mode: 'specific' }, /timeZone|utcOffset/],
      [{ timeZone: 'Mars/Olympus' }, /timeZone/],
      [{ utcOffset: '+25:00' }, /utcOffset/],
      [{ limit: 0 }, /limit/],
      [{ groupBy: 'user' }, /groupBy/],
    ];
    for (const [params, names] of cases)
      expectInvalidRequest(await admin.request('sessions.usage', params), names);
  });

  it('sessions.usage.timeseries: cumulative points; no transcript is INVALID_REQUEST', async () => {
    const bare = freshKey('ts');
    await turn(bare, 'point one');
    await turn(bare, 'point two');
    const { entry } = await patch({ key: bare });
    const res = await admin.call<{
      sessionId: string;
      points: { timestamp: number; totalTokens: number; cumulativeTokens: number; cost: number }[];
    }>('sessions.usage.timeseries', { key: bare });
    expect(res.sessionId).toBe(entry.sessionId);
    expect(res.points.length).toBe(2);
    const [a, b] = res.points as [(typeof res.points)[0], (typeof res.points)[0]];
    expect(b.timestamp).toBeGreaterThanOrEqual(a.timestamp);
    expect(a.cumulativeTokens).toBe(a.totalTokens);
    expect(b.cumulativeTokens).toBe(a.totalTokens + b.totalTokens);
    expect(b.cumulativeTokens).toBe((await rowOf(bare))!.totalTokens);
    // No session, or a session without a transcript (made by sessions.patch): the same error.
    for (const missing of [freshKey('ts-none'), (await patch({ key: freshKey('ts-q') })).key]) {
      const err = await admin.request('sessions.usage.timeseries', { key: missing });
      expectInvalidRequest(err, /No transcript found for session/);
      expect(err.error!.message).toBe(
        `No transcript found for session: ${missing.startsWith('agent:') ? missing : canonical(missing)}`,
      );
    }
    expectInvalidRequest(await admin.request('sessions.usage.timeseries', {}), /key/);
  });

  it('sessions.usage.logs: the transcript with tokens, newest limit entries', async () => {
    const bare = freshKey('logs');
    await turn(bare, 'log one');
    await turn(bare, 'log two');
    const res = await admin.call<{
      logs: { timestamp: number; role: string; content: string; tokens?: number }[];
    }>('sessions.usage.logs', { key: bare });
    expect(res.logs.map((l) => [l.role, l.content])).toEqual([
      ['user', 'log one'],
      ['assistant', '[scripted] log one'],
      ['user', 'log two'],
      ['assistant', '[scripted] log two'],
    ]);
    for (const l of res.logs) {
      expect(typeof l.timestamp).toBe('number');
      if (l.role === 'assistant') expect(l.tokens).toBeGreaterThan(0);
      else expect(l).not.toHaveProperty('tokens');
    }
    const last = await admin.call<{ logs: { content: string }[] }>('sessions.usage.logs', {
      key: bare,
      limit: 1,
    });
    expect(last.logs.map((l) => l.content)).toEqual(['[scripted] log two']);
    expectInvalidRequest(
      await admin.request('sessions.usage.logs', { key: bare, limit: 0 }),
      /limit/,
    );
    const missing = freshKey('logs-none');
    const err = await admin.request('sessions.usage.logs', { key: missing });
    expectInvalidRequest(err, /No transcript found for session/);
    expect(err.error!.message).toBe(`No transcript found for session: ${canonical(missing)}`);
    const quiet = (await patch({ key: freshKey('logs-q') })).key;
    expect((await admin.request('sessions.usage.logs', { key: quiet })).error?.message).toBe(
      `No transcript found for session: ${quiet}`,
    );
  });

  it('the usage reports are read scope', async () => {
    const bare = freshKey('usage-read');
    await turn(bare, 'readable');
    for (const [method, params] of [
      ['sessions.usage', { key: bare }],
      ['sessions.usage.timeseries', { key: bare }],
      ['sessions.usage.logs', { key: bare }],
      ['usage.cost', {}],
      ['usage.status', {}],
    ] as const) {
      const res = await reader.request(method, params);
      expect(res.ok, `${method}: ${JSON.stringify(res.error)}`).toBe(true);
    }
  });
});

describe('usage.cost and usage.status (§4.3, §4.4)', () => {
  it('usage.cost with days:3 answers three zero-filled daily rows ending today', async () => {
    await turn(freshKey('cost'), 'costly words');
    const res = await admin.call<{
      updatedAt: number;
      days: number;
      daily: (Totals & { date: string })[];
      totals: Totals;
    }>('usage.cost', { days: 3 });
    expect(res.days).toBe(3);
    expect(res.daily.map((d) => d.date)).toEqual([todayUtc(-2), todayUtc(-1), todayUtc()]);
    for (const d of res.daily)
      expect(Object.keys(d).sort()).toEqual([...TOTALS_KEYS, 'date'].sort());
    // The daemon started today: the earlier days are zero-filled rows.
    expect(res.daily[0]!.totalTokens).toBe(0);
    expect(res.daily[0]!.missingCostEntries).toBe(0);
    expect(res.daily[2]!.totalTokens).toBeGreaterThan(0);
    const summed = res.daily.reduce((n, d) => n + d.totalTokens, 0);
    expect(res.totals.totalTokens).toBe(summed);
    // Warden keeps no price table: every model call is a missing cost entry.
    expect(res.totals.totalCost).toBe(0);
    expect(res.totals.missingCostEntries).toBeGreaterThan(0);
    const all = await admin.call<{ totals: Totals }>('usage.cost', { days: 3, agentScope: 'all' });
    expect(all.totals).toEqual(res.totals);
    const nobody = await admin.call<{ totals: Totals }>('usage.cost', {
      days: 3,
      agentId: 'nobody',
    });
    expect(nobody.totals.totalTokens).toBe(0);
    const ranged = await admin.call<{ days: number }>('usage.cost', {
      startDate: todayUtc(-6),
      endDate: todayUtc(),
    });
    expect(ranged.days).toBe(7);
  });

  it('usage.cost refuses bad params with a message naming them', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ days: 0 }, /days/],
      [{ days: 'week' }, /days/],
      [{ startDate: '2026-13-01' }, /startDate/],
      [{ startDate: '2026-03-05', endDate: '2026-03-01' }, /is after endDate/],
      [{ agentScope: 'some' }, /agentScope/],
      [{ timeZone: 'Nowhere/Else' }, /timeZone/],
    ];
    for (const [params, names] of cases)
      expectInvalidRequest(await admin.request('usage.cost', params), names);
  });

  it('usage.status names the provider with no quota windows', async () => {
    const res = await admin.call<{ updatedAt: number; providers: Record<string, unknown>[] }>(
      'usage.status',
    );
    expect(Math.abs(res.updatedAt - Date.now())).toBeLessThan(10_000);
    expect(res.providers).toEqual([{ provider: 'scripted', displayName: 'scripted', windows: [] }]);
  });
});

describe('system methods (§4.1, §4.2, §4.19)', () => {
  it('health answers the HealthSnapshot (sent without a params key, as the CLI does)', async () => {
    const res = await reader.request('health');
    expect(res.ok, JSON.stringify(res.error)).toBe(true);
    const h = payloadOf(res);
    expect(h).toMatchObject({ ok: true, defaultAgentId: 'main', channels: {}, channelOrder: [] });
    expect(typeof h.ts).toBe('number');
    expect(typeof h.durationMs).toBe('number');
    const agents = h.agents as Record<string, unknown>[];
    expect(agents[0]).toMatchObject({
      agentId: 'main',
      isDefault: true,
      heartbeat: { enabled: false, everyMs: null },
      sessions: { path: 'warden:sessions' },
    });
    expect(h.sessions).toMatchObject({ path: 'warden:sessions' });
    expect(typeof (h.sessions as { count: unknown }).count).toBe('number');
    expect(Array.isArray((h.sessions as { recent: unknown }).recent)).toBe(true);
    expect((await reader.request('health', { probe: true })).ok).toBe(true);
    expectInvalidRequest(await reader.request('health', { probe: 'yes' }), /probe/);
  });

  it('status answers the §4.2 shape; Warden details only for admin clients', async () => {
    const bare = freshKey('status');
    await turn(bare, 'status check');
    const s = await reader.call<Record<string, unknown> & { sessions: Record<string, unknown> }>(
      'status',
    );
    expect(typeof s.runtimeVersion).toBe('string');
    expect(s).toMatchObject({
      heartbeat: { defaultAgentId: 'main', agents: [{ agentId: 'main', enabled: false }] },
      channelSummary: [],
      queuedSystemEvents: [],
    });
    expect(s.sessions.paths).toEqual(['warden:sessions']);
    expect(s.sessions.count).toBeGreaterThan(0);
    const defaults = (await list({ search: bare })).defaults;
    expect(s.sessions.defaults).toEqual({ model: defaults.model, contextTokens: null });
    expect((s.sessions.recent as { key: string }[]).length).toBeLessThanOrEqual(10);
    expect(s.sessions.byAgent).toEqual([
      expect.objectContaining({ agentId: 'main', path: 'warden:sessions' }),
    ]);
    expect(s).not.toHaveProperty('warden');
    const full = await admin.call<Record<string, unknown>>('status');
    expect(full.warden).toMatchObject({ store: { ok: true } });
  });

  it('config.get, system-presence, last-heartbeat, models.list and agents.list', async () => {
    const config = await reader.call<Record<string, unknown>>('config.get', {});
    expect(config).toMatchObject({ exists: true, valid: true });
    expect(String(config.path)).toMatch(/config\.yaml$/);
    expect(config.config).toMatchObject({ gateway: { auth: { mode: 'token' } } });
    const text = JSON.stringify(config);
    expect(text).not.toContain(gw.token);
    expect(text).not.toContain(HOOK_SECRET);
    expect(await reader.call('system-presence')).toEqual([]);
    const beat = await reader.request('last-heartbeat');
    expect(beat.ok).toBe(true);
    expect(beat.payload).toBeNull();
    expect(await reader.call('models.list')).toEqual({
      models: [{ id: 'scripted', name: 'scripted', provider: 'scripted' }],
    });
    expect(await reader.call('agents.list')).toMatchObject({
      defaultId: 'main',
      mainKey: 'main',
      agents: [{ id: 'main', name: 'main' }],
    });
  });

  it('parameterless methods take absent, {} and null params alike', async () => {
    for (const method of [
      'status',
      'usage.status',
      'system-presence',
      'last-heartbeat',
      'config.get',
      'models.list',
      'agents.list',
    ]) {
      const answers = [];
      for (const params of [undefined, {}, null]) {
        const res = await reader.request(method, params);
        expect(res.ok, `${method} ${JSON.stringify(params)}: ${JSON.stringify(res.error)}`).toBe(
          true,
        );
        answers.push(res.payload === null ? 'null' : typeof res.payload);
      }
      expect(new Set(answers).size, method).toBe(1);
      expectInvalidRequest(await reader.request(method, [1]), new RegExp(`${method}.*object`));
    }
  });

  it('the session methods enforce their scopes (§2.6)', async () => {
    const bare = freshKey('scopes');
    await patch({ key: bare });
    for (const method of ['sessions.list', 'sessions.preview', 'sessions.resolve']) {
      const params = method === 'sessions.preview' ? { keys: [bare] } : { key: bare };
      expect((await reader.request(method, params)).ok, method).toBe(true);
    }
    expectMissingScope(
      await reader.request('chat.send', {
        sessionKey: bare,
        message: 'hi',
        idempotencyKey: randomUUID(),
      }),
      'operator.write',
    );
    expectMissingScope(await reader.request('sessions.reset', { key: bare }), 'operator.admin');
    expectMissingScope(await writer.request('sessions.compact', { key: bare }), 'operator.admin');
  });
});
