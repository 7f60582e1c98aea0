import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../errors.ts';
import { checkParams } from '../params.ts';
import {
  newOpenClawEntry,
  type OpenClawEntry,
  sessionsListParams,
  sessionsPreviewParams,
  sessionsResolveParams,
} from './session-entry.ts';
import {
  agentIdOfKey,
  DERIVED_TITLE_MAX_LENGTH,
  deriveSessionTitle,
  isCronKey,
  listSessions,
  resolveSession,
  type SessionKind,
  sessionsPreview,
  type SessionView,
  truncateAtWord,
} from './session-list.ts';

const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const MIN = 60_000;

function view(
  key: string,
  updatedAt: number,
  extra: Partial<OpenClawEntry> = {},
  more: Partial<SessionView> = {},
): SessionView {
  const kind: SessionKind =
    key === 'global'
      ? 'global'
      : key === 'unknown'
        ? 'unknown'
        : key.includes(':group:')
          ? 'group'
          : 'direct';
  return {
    key,
    kind,
    updatedAt,
    createdAt: updatedAt - 1000,
    entry: { ...newOpenClawEntry({ key, sessionId: `sid-${key}` }), ...extra },
    usage: {
      inputTokens: 10,
      outputTokens: 5,
      totalTokens: 15,
      contextTokens: null,
      totalTokensFresh: true,
      estimatedCostUsd: 0.01,
    },
    ...more,
  };
}

const list = (views: readonly SessionView[], params: unknown = {}, ctx = {}) =>
  listSessions(views, checkParams('l', sessionsListParams, params), NOW, ctx);
const keys = (r: ReturnType<typeof list>) => r.sessions.map((s) => s.key);

const VIEWS: SessionView[] = [
  view('agent:main:main', NOW - 1 * MIN, { label: 'Main' }),
  view('agent:main:telegram:group:-100', NOW - 2 * MIN, { displayName: 'Family chat' }),
  view('agent:ops:main', NOW - 3 * MIN),
  view('agent:main:subagent:abc', NOW - 4 * MIN, { spawnedBy: 'agent:main:main' }),
  view('agent:main:cron:nightly:run:1', NOW - 5 * MIN),
  view('agent:main:old', NOW - 90 * MIN, { archived: true }),
  view('global', NOW - 6 * MIN),
  view('unknown', NOW - 7 * MIN),
];

describe('sessions.list inclusion and filters', () => {
  it('excludes global, unknown and archived sessions by default, newest first', () => {
    expect(keys(list(VIEWS))).toEqual([
      'agent:main:main',
      'agent:main:telegram:group:-100',
      'agent:ops:main',
      'agent:main:subagent:abc',
      'agent:main:cron:nightly:run:1',
    ]);
  });

  it('includeGlobal / includeUnknown add them', () => {
    const r = list(VIEWS, { includeGlobal: true, includeUnknown: true });
    expect(keys(r)).toContain('global');
    expect(keys(r)).toContain('unknown');
    expect(keys(list(VIEWS, { includeGlobal: true }))).not.toContain('unknown');
  });

  it('archived: true only archived, "all" both', () => {
    expect(keys(list(VIEWS, { archived: true }))).toEqual(['agent:main:old']);
    expect(list(VIEWS, { archived: 'all' }).totalCount).toBe(6);
  });

  it('filters by agent, label, spawnedBy, pinned and group', () => {
    expect(keys(list(VIEWS, { agentId: 'OPS', includeGlobal: true }))).toEqual(['agent:ops:main']);
    expect(keys(list(VIEWS, { label: ' Main ' }))).toEqual(['agent:main:main']);
    expect(keys(list(VIEWS, { spawnedBy: 'agent:main:main' }))).toEqual([
      'agent:main:subagent:abc',
    ]);
    const pinned = [view('agent:a:x', NOW, { pinned: true }), view('agent:a:y', NOW - 1)];
    expect(keys(list(pinned, { pinned: true }))).toEqual(['agent:a:x']);
    expect(keys(list(pinned, { pinned: false }))).toEqual(['agent:a:y']);
    const grouped = [view('agent:a:x', NOW, { category: 'Work' }), view('agent:a:y', NOW - 1)];
    expect(keys(list(grouped, { group: 'Work' }))).toEqual(['agent:a:x']);
    expect(keys(list(grouped, { group: '' }))).toEqual(['agent:a:y']);
  });

  it('excludeSubagents and excludeCron', () => {
    const r = list(VIEWS, { excludeSubagents: true, excludeCron: true });
    expect(keys(r)).not.toContain('agent:main:subagent:abc');
    expect(keys(r)).not.toContain('agent:main:cron:nightly:run:1');
    expect(r.totalCount).toBe(3);
  });

  it('configuredAgentsOnly keeps agents in the config (when the caller knows them)', () => {
    expect(
      keys(list(VIEWS, { configuredAgentsOnly: true }, { configuredAgentIds: ['ops'] })),
    ).toEqual(['agent:ops:main']);
    expect(list(VIEWS, { configuredAgentsOnly: true }).totalCount).toBe(5);
  });

  it('search is case-insensitive over key, label, displayName and derived title', () => {
    expect(keys(list(VIEWS, { search: 'FAMILY' }))).toEqual(['agent:main:telegram:group:-100']);
    expect(keys(list(VIEWS, { search: 'ops:' }))).toEqual(['agent:ops:main']);
    expect(keys(list(VIEWS, { search: 'main' })).length).toBe(5);
    const titled = [view('agent:a:x', NOW, {}, { firstUserMessage: 'Plan the Q3 offsite' })];
    expect(keys(list(titled, { search: 'offsite' }))).toEqual(['agent:a:x']);
  });

  it('activeMinutes and activeOnly', () => {
    expect(keys(list(VIEWS, { activeMinutes: 2 }))).toEqual([
      'agent:main:main',
      'agent:main:telegram:group:-100',
    ]);
    const running = [
      view('agent:a:x', NOW, {}, { status: 'running' }),
      view('agent:a:y', NOW, {}, { status: 'done' }),
      view('agent:a:z', NOW, {}, { status: 'queued' }),
    ];
    expect(keys(list(running, { activeOnly: true }))).toEqual(['agent:a:x', 'agent:a:z']);
  });

  it('sortBy activity / lastInteractionAt use the newest message', () => {
    const vs = [
      view('agent:a:x', NOW - 10 * MIN, {}, { lastMessage: { role: 'user', text: 'hi', ts: NOW } }),
      view('agent:a:y', NOW - 5 * MIN),
    ];
    expect(keys(list(vs))).toEqual(['agent:a:y', 'agent:a:x']);
    expect(keys(list(vs, { sortBy: 'activity' }))).toEqual(['agent:a:x', 'agent:a:y']);
    expect(keys(list(vs, { sortBy: 'lastInteractionAt' }))).toEqual(['agent:a:x', 'agent:a:y']);
    expect(keys(list(vs, { sortBy: 'activity', activeMinutes: 1 }))).toEqual(['agent:a:x']);
  });
});

describe('sessions.list rows and envelope', () => {
  it('has the §4.5 envelope and delivery hints and totalTokensFresh on every row', () => {
    const vs = [
      view('agent:a:x', NOW, {
        lastAccountId: 'acct-1',
        deliveryContext: { channel: 'telegram', to: '42' },
        thinkingLevel: 'high',
      }),
      view('agent:a:y', NOW - 1),
    ];
    const defaults = { modelProvider: 'anthropic', model: 'claude', contextTokens: 200_000 };
    const r = list(vs, {}, { path: '/srv/warden', defaults });
    expect(r).toMatchObject({
      ts: NOW,
      path: '/srv/warden',
      count: 2,
      totalCount: 2,
      limitApplied: 200,
      offset: 0,
      nextOffset: null,
      hasMore: false,
      defaults,
    });
    expect(r.sessions[0]).toMatchObject({
      key: 'agent:a:x',
      kind: 'direct',
      sessionId: 'sid-agent:a:x',
      agentId: 'a',
      lastAccountId: 'acct-1',
      deliveryContext: { channel: 'telegram', to: '42' },
      thinkingLevel: 'high',
      inputTokens: 10,
      outputTokens: 5,
      totalTokens: 15,
      contextTokens: 200_000,
      totalTokensFresh: true,
    });
    for (const row of r.sessions) expect(typeof row.totalTokensFresh).toBe('boolean');
    expect(r.sessions[1]).not.toHaveProperty('lastAccountId');
    expect(Object.values(r.sessions[1] ?? {})).not.toContain(null);
  });

  it('derived titles and last-message previews only when asked', () => {
    const v = view(
      'agent:a:x',
      NOW,
      {},
      {
        firstUserMessage:
          'Please  summarise\nthe quarterly report for the board meeting next Thursday morning',
        lastMessage: { role: 'assistant', text: 'Done.\n\nHere it is.', ts: NOW },
      },
    );
    expect(list([v]).sessions[0]).not.toHaveProperty('derivedTitle');
    const row = list([v], { includeDerivedTitles: true, includeLastMessage: true }).sessions[0];
    expect(row?.derivedTitle).toBe('Please summarise the quarterly report for the board meeting…');
    expect(row?.lastMessagePreview).toBe('Done. Here it is.');
  });

  it('derived title falls back to the display name, then the session id and date', () => {
    expect(deriveSessionTitle(view('agent:a:x', NOW, { label: 'L' }))).toBe('L');
    expect(deriveSessionTitle(view('agent:a:x', NOW, { sessionId: '0123456789abcdef' }))).toBe(
      '01234567 (2026-06-01)',
    );
  });

  it('property: derived titles are ≤ 60 characters and a prefix of the message', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (text) => {
        const t = truncateAtWord(text, DERIVED_TITLE_MAX_LENGTH);
        const flat = text.replace(/\s+/g, ' ').trim();
        expect(t.length).toBeLessThanOrEqual(DERIVED_TITLE_MAX_LENGTH);
        if (flat.length <= DERIVED_TITLE_MAX_LENGTH) expect(t).toBe(flat);
        else {
          expect(t.endsWith('…')).toBe(true);
          expect(flat.startsWith(t.slice(0, -1))).toBe(true);
        }
      }),
    );
  });
});

describe('sessions.list paging', () => {
  const many = Array.from({ length: 7 }, (_, i) => view(`agent:a:s${i}`, NOW - i));

  it('pages with nextOffset > offset while hasMore', () => {
    const p1 = list(many, { limit: 3 });
    expect(p1).toMatchObject({ count: 3, totalCount: 7, hasMore: true, nextOffset: 3 });
    const p3 = list(many, { limit: 3, offset: 6 });
    expect(p3).toMatchObject({ count: 1, hasMore: false, nextOffset: null, offset: 6 });
    expect(list(many, { offset: 50 })).toMatchObject({
      count: 0,
      hasMore: false,
      nextOffset: null,
    });
  });

  it('property: following nextOffset visits every session exactly once, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1e6 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        (times, limit) => {
          const vs = times.map((t, i) => view(`agent:a:k${i}`, NOW - t));
          const seen: string[] = [];
          let offset = 0;
          for (let guard = 0; guard < 100; guard++) {
            const page = list(vs, { limit, offset });
            seen.push(...keys(page));
            expect(page.totalCount).toBe(vs.length);
            if (!page.hasMore) break;
            expect(page.nextOffset).toBeGreaterThan(offset);
            offset = page.nextOffset as number;
          }
          expect(seen).toEqual(keys(list(vs, { limit: 1000 })));
          expect(new Set(seen).size).toBe(vs.length);
        },
      ),
    );
  });
});

describe('sessions.resolve', () => {
  const vs = [
    view('agent:main:main', NOW, { label: 'Main', boardFace: 'chat' }),
    view('agent:main:subagent:1', NOW - 1, { spawnedBy: 'agent:main:main', label: 'Child' }),
    view('agent:main:subagent:2', NOW - 2, { spawnedBy: 'agent:main:main' }),
    view('agent:ops:x', NOW - 3, { sessionId: 'abcdef-1' }),
    view('global', NOW - 4, { label: 'G' }),
  ];
  const resolve = (params: unknown) =>
    resolveSession(vs, checkParams('r', sessionsResolveParams, params));

  it('by key, label, sessionId and its prefix', () => {
    expect(resolve({ key: 'agent:main:main' })).toEqual({
      ok: true,
      key: 'agent:main:main',
      agentId: 'main',
      displayName: 'Main',
      boardFace: 'chat',
    });
    expect(resolve({ label: 'Child' })).toMatchObject({ ok: true, key: 'agent:main:subagent:1' });
    expect(resolve({ sessionId: 'abcdef-1' })).toMatchObject({
      ok: true,
      key: 'agent:ops:x',
      agentId: 'ops',
    });
    expect(resolve({ shortId: 'ABCD' })).toMatchObject({ ok: true, key: 'agent:ops:x' });
  });

  it('by spawnedBy: ambiguous gives candidates, newest first; combined with label it resolves', () => {
    const r = resolve({ spawnedBy: 'agent:main:main' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.candidates?.map((c) => c.key)).toEqual([
      'agent:main:subagent:1',
      'agent:main:subagent:2',
    ]);
    expect(resolve({ spawnedBy: 'agent:main:main', label: 'Child' })).toMatchObject({ ok: true });
  });

  it('caps candidates at 10', () => {
    const crowd = Array.from({ length: 15 }, (_, i) =>
      view(`agent:a:${i}`, NOW - i, { category: 'c', spawnedBy: 'p' }),
    );
    const r = resolveSession(crowd, checkParams('r', sessionsResolveParams, { spawnedBy: 'p' }));
    expect(!r.ok && r.candidates?.length).toBe(10);
  });

  it('global needs includeGlobal unless named by key', () => {
    expect(resolve({ label: 'G', allowMissing: true })).toEqual({ ok: false });
    expect(resolve({ label: 'G', includeGlobal: true })).toMatchObject({
      ok: true,
      key: 'global',
      agentId: 'main',
    });
    expect(resolve({ key: 'global' })).toMatchObject({ ok: true, key: 'global' });
  });

  it('missing: {ok:false} with allowMissing, else INVALID_PARAMS "No session found"', () => {
    expect(resolve({ label: 'Nope', allowMissing: true })).toEqual({ ok: false });
    let message = '';
    try {
      resolve({ label: 'Nope', agentId: 'ops' });
    } catch (e) {
      if (isWardenError(e, 'INVALID_PARAMS')) message = e.message;
    }
    expect(message).toBe('No session found: label "Nope", agentId "ops"');
  });
});

describe('sessions.preview', () => {
  const messages: Record<string, { role: string; text: string; ts: number }[]> = {
    a: [
      { role: 'user', text: 'one', ts: 1 },
      { role: 'tool', text: 'ls', ts: 2 },
      { role: 'assistant', text: 'two', ts: 3 },
      { role: 'user', text: 'three '.repeat(20), ts: 4 },
    ],
    e: [{ role: 'system', text: 'boot', ts: 1 }],
  };
  it('keeps the requested keys in order, the last `limit` items, cut to maxChars', () => {
    const params = checkParams('p', sessionsPreviewParams, {
      keys: ['e', 'a', 'missing', 'a'],
      limit: 2,
      maxChars: 20,
    });
    const r = sessionsPreview(params, (k) => messages[k], NOW);
    expect(r.ts).toBe(NOW);
    expect(r.previews.map((p) => [p.key, p.status])).toEqual([
      ['e', 'empty'],
      ['a', 'ok'],
      ['missing', 'missing'],
      ['a', 'ok'],
    ]);
    expect(r.previews[1]?.items).toEqual([
      { role: 'assistant', text: 'two' },
      { role: 'user', text: 'three three three…' },
    ]);
  });
});

describe('key helpers', () => {
  it('agentIdOfKey and isCronKey', () => {
    expect(agentIdOfKey('agent:Main:main')).toBe('main');
    expect(agentIdOfKey('global')).toBeUndefined();
    expect(agentIdOfKey('agent:x::y')).toBeUndefined();
    expect(isCronKey('cron:nightly')).toBe(true);
    expect(isCronKey('agent:main:cron:j:run:r')).toBe(true);
    expect(isCronKey('agent:main:crony')).toBe(false);
  });
});
