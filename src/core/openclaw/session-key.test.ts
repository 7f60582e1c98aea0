import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../errors.ts';
import {
  AGENT_ID_PATTERN,
  canonicalSessionKey,
  groupIsolationKey,
  isGroupKey,
  normalizeAgentId,
  normalizeSessionKey,
  type ParsedSessionKey,
  parseSessionKey,
  sessionKind,
} from './session-key.ts';

/** Every example key of reference §6.1 (and the Rust parser's forms), with what it must parse to. */
const TABLE: ReadonlyArray<{
  readonly key: string;
  readonly expect: Partial<ParsedSessionKey> & Record<string, unknown>;
}> = [
  // Canonical main session and sentinels.
  {
    key: 'agent:main:main',
    expect: { kind: 'main', agentId: 'main', canonical: 'agent:main:main' },
  },
  { key: 'global', expect: { kind: 'global', canonical: 'global', scoped: false } },
  { key: 'unknown', expect: { kind: 'unknown', canonical: 'unknown', scoped: false } },
  { key: '  GLOBAL ', expect: { kind: 'global', canonical: 'global' } },
  // Aliases: "", "main", bare legacy keys.
  { key: '', expect: { kind: 'main', scoped: false, canonical: 'agent:main:main' } },
  { key: '   ', expect: { kind: 'main', canonical: 'agent:main:main' } },
  { key: 'main', expect: { kind: 'main', scoped: false, canonical: 'agent:main:main' } },
  { key: 'MAIN', expect: { kind: 'main', canonical: 'agent:main:main' } },
  {
    key: 'my-notes',
    expect: { kind: 'legacy', key: 'my-notes', canonical: 'agent:main:my-notes' },
  },
  { key: 'agent:ops:my-notes', expect: { kind: 'legacy', agentId: 'ops', key: 'my-notes' } },
  // DM scopes.
  { key: 'agent:main:direct:+15551234567', expect: { kind: 'direct', peerId: '+15551234567' } },
  {
    key: 'agent:main:telegram:direct:42',
    expect: { kind: 'direct', channel: 'telegram', peerId: '42' },
  },
  {
    key: 'agent:main:whatsapp:biz:direct:+1555',
    expect: { kind: 'direct', channel: 'whatsapp', accountId: 'biz', peerId: '+1555' },
  },
  {
    key: 'agent:main:whatsapp:dm:+15551234567',
    expect: {
      kind: 'direct',
      channel: 'whatsapp',
      peerId: '+15551234567',
      canonical: 'agent:main:whatsapp:direct:+15551234567',
    },
  },
  { key: 'dm:alice', expect: { kind: 'direct', canonical: 'agent:main:direct:alice' } },
  // Groups, channels, rooms, threads and topics.
  {
    key: 'agent:main:telegram:group:-100123:topic:42',
    expect: {
      kind: 'group',
      channel: 'telegram',
      groupId: '-100123',
      topic: '42',
      canonical: 'agent:main:telegram:group:-100123:topic:42',
    },
  },
  {
    key: 'agent:ops:discord:channel:help',
    expect: { kind: 'channel', agentId: 'ops', channel: 'discord', groupId: 'help' },
  },
  {
    key: 'agent:main:slack:channel:c123:thread:1700000000.0001',
    expect: { kind: 'channel', groupId: 'c123', thread: '1700000000.0001' },
  },
  {
    key: 'agent:main:mattermost:room:town-square',
    expect: { kind: 'room', channel: 'mattermost', groupId: 'town-square' },
  },
  {
    key: 'agent:main:slack:work:channel:c9',
    expect: { kind: 'channel', channel: 'slack', accountId: 'work', groupId: 'c9' },
  },
  { key: 'telegram:group:-100', expect: { kind: 'group', scoped: false, groupId: '-100' } },
  // Case: lowercased, except Signal group ids and Matrix room ids.
  {
    key: 'Agent:Main:Telegram:Group:AbC',
    expect: { kind: 'group', groupId: 'abc', canonical: 'agent:main:telegram:group:abc' },
  },
  {
    key: 'AGENT:Main:SIGNAL:GROUP:AbCdEf==',
    expect: {
      kind: 'group',
      channel: 'signal',
      groupId: 'AbCdEf==',
      canonical: 'agent:main:signal:group:AbCdEf==',
    },
  },
  {
    key: 'signal:group:XyZ',
    expect: { kind: 'group', groupId: 'XyZ', canonical: 'agent:main:signal:group:XyZ' },
  },
  {
    key: 'agent:main:signal:direct:+1ABC',
    expect: { kind: 'direct', peerId: '+1abc' },
  },
  {
    key: 'agent:main:Matrix:Channel:!RoomId:Example.org:THREAD:$EvEnT',
    expect: {
      kind: 'channel',
      channel: 'matrix',
      groupId: '!RoomId:Example.org',
      thread: '$EvEnT',
      canonical: 'agent:main:matrix:channel:!RoomId:Example.org:thread:$EvEnT',
    },
  },
  {
    key: 'matrix:room:!AbC:srv',
    expect: { kind: 'room', groupId: '!AbC:srv', canonical: 'agent:main:matrix:room:!AbC:srv' },
  },
  { key: 'agent:main:matrix:direct:@Ann:srv', expect: { kind: 'direct', peerId: '@ann:srv' } },
  // Other forms.
  {
    key: 'agent:main:cron:nightly:run:r-7',
    expect: { kind: 'cron', jobId: 'nightly', runId: 'r-7' },
  },
  {
    key: 'cron:nightly',
    expect: { kind: 'cron', jobId: 'nightly', canonical: 'agent:main:cron:nightly' },
  },
  {
    key: 'hook:6f1c0c1e-8d4a-4b7e-9c2a-1b2c3d4e5f60',
    expect: { kind: 'hook', hookId: '6f1c0c1e-8d4a-4b7e-9c2a-1b2c3d4e5f60' },
  },
  {
    key: 'agent:main:subagent:aaa',
    expect: { kind: 'subagent', subagentIds: ['aaa'], depth: 1 },
  },
  {
    key: 'agent:main:subagent:aaa:subagent:bbb',
    expect: { kind: 'subagent', subagentIds: ['aaa', 'bbb'], depth: 2 },
  },
  { key: 'agent:main:acp:1234', expect: { kind: 'acp', acpId: '1234' } },
  {
    key: 'agent:main:discord:slash:U123',
    expect: { kind: 'slash', channel: 'discord', userId: 'u123' },
  },
  {
    key: 'agent:main:dashboard:incognito-x1',
    expect: { kind: 'incognito', surface: 'dashboard', incognitoId: 'x1' },
  },
  {
    key: 'agent:main:subagent:incognito-x2',
    expect: { kind: 'incognito', surface: 'subagent', incognitoId: 'x2' },
  },
  {
    key: 'agent:main:internal-session-effects:incognito-x3',
    expect: { kind: 'incognito', surface: 'internal-session-effects', incognitoId: 'x3' },
  },
  { key: 'node-123', expect: { kind: 'node', nodeId: '123', canonical: 'agent:main:node-123' } },
  // Malformed agent keys (§6.1: agent id and rest non-empty, rest not starting with ":").
  { key: 'agent::x', expect: { kind: 'malformed_agent' } },
  { key: 'agent:x:', expect: { kind: 'malformed_agent' } },
  { key: 'agent:x', expect: { kind: 'malformed_agent' } },
  { key: 'agent:', expect: { kind: 'malformed_agent' } },
  { key: 'agent:x::y', expect: { kind: 'malformed_agent' } },
  { key: 'AGENT::X', expect: { kind: 'malformed_agent' } },
  { key: 'agent:bad id:x', expect: { kind: 'malformed_agent' } },
  { key: ':x', expect: { kind: 'malformed_agent', scoped: false } },
  // Near misses stay legacy rather than guessing.
  { key: 'agent:main:telegram::group:1', expect: { kind: 'legacy' } },
  { key: 'agent:main:telegram:group:', expect: { kind: 'legacy' } },
  { key: 'agent:main:global', expect: { kind: 'legacy', key: 'global' } },
  { key: 'agent', expect: { kind: 'legacy', canonical: 'agent:main:agent' } },
];

describe('parseSessionKey: every example key of §6.1', () => {
  it.each(TABLE)('$key', ({ key, expect: want }) => {
    expect(parseSessionKey(key)).toMatchObject(want);
  });
});

describe('parseSessionKey rules', () => {
  it('trims whitespace and parses agent: case-insensitively', () => {
    const parsed = parseSessionKey('  AGENT:OPS:Telegram:Direct:Bob \n');
    expect(parsed).toMatchObject({ kind: 'direct', agentId: 'ops', scoped: true });
    expect(parsed.canonical).toBe('agent:ops:telegram:direct:bob');
  });

  it('gives bare keys no agentId and scoped keys their own', () => {
    expect(parseSessionKey('telegram:group:1').agentId).toBeUndefined();
    expect(parseSessionKey('agent:ops:telegram:group:1').agentId).toBe('ops');
  });

  it('honours a configured mainKey', () => {
    expect(parseSessionKey('agent:ops:home', { mainKey: 'Home' })).toMatchObject({
      kind: 'main',
      mainKey: 'home',
    });
    expect(parseSessionKey('agent:ops:home').kind).toBe('legacy');
    // The bare alias "main" still means the main session.
    expect(parseSessionKey('main', { mainKey: 'home' }).canonical).toBe('agent:main:home');
  });

  it('rejects a mainKey with ":"', () => {
    expect(() => parseSessionKey('main', { mainKey: 'a:b' })).toThrow(/mainKey/);
  });

  it('reads a thread on the main session and on DMs', () => {
    expect(parseSessionKey('agent:main:main:thread:77')).toMatchObject({
      kind: 'main',
      thread: '77',
    });
    expect(parseSessionKey('agent:main:slack:direct:u1:thread:9')).toMatchObject({
      kind: 'direct',
      peerId: 'u1',
      thread: '9',
    });
  });

  it('reads both a topic and a thread suffix', () => {
    expect(parseSessionKey('agent:main:telegram:group:-1:topic:4:thread:8')).toMatchObject({
      kind: 'group',
      groupId: '-1',
      topic: '4',
      thread: '8',
    });
  });

  it('lets the earliest marker win (a group whose id is "direct:5")', () => {
    expect(parseSessionKey('agent:main:telegram:group:direct:5')).toMatchObject({
      kind: 'group',
      groupId: 'direct:5',
    });
  });

  it('keeps a Signal group id inside a Matrix tail verbatim, once', () => {
    const key = 'matrix:group:!R:srv:signal:group:AbC';
    expect(normalizeSessionKey(key)).toBe(key);
  });

  it('trims a Signal group id segment and lowercases the rest', () => {
    expect(normalizeSessionKey('X:SIGNAL:GROUP: AbC :Thread:T')).toBe(
      'x:signal:group:AbC:thread:t',
    );
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (raw) => {
        expect(() => parseSessionKey(raw)).not.toThrow();
      }),
    );
  });
});

describe('canonicalSessionKey', () => {
  it('maps "" and "main" to agent:<agentId>:<mainKey>', () => {
    expect(canonicalSessionKey('')).toBe('agent:main:main');
    expect(canonicalSessionKey('main')).toBe('agent:main:main');
    expect(canonicalSessionKey(' Main ', { agentId: 'Ops', mainKey: 'Home' })).toBe(
      'agent:ops:home',
    );
  });

  it('places a bare legacy key under the agent', () => {
    expect(canonicalSessionKey('x', { agentId: 'ops' })).toBe('agent:ops:x');
    expect(canonicalSessionKey('telegram:dm:7', { agentId: 'ops' })).toBe(
      'agent:ops:telegram:direct:7',
    );
  });

  it('normalises the agentId option', () => {
    expect(canonicalSessionKey('x', { agentId: '  My Agent!! ' })).toBe('agent:my-agent:x');
  });

  it('keeps global and unknown', () => {
    expect(canonicalSessionKey('global', { agentId: 'ops' })).toBe('global');
    expect(canonicalSessionKey('UNKNOWN', { agentId: 'ops' })).toBe('unknown');
  });

  it("keeps a scoped key's own agent", () => {
    expect(canonicalSessionKey('agent:a:x', { agentId: 'b' })).toBe('agent:a:x');
  });

  it.each(['agent::x', 'agent:x:', 'agent:x::y', 'agent:x', ':x'])(
    'throws INVALID_PARAMS for malformed %j',
    (key) => {
      let caught: unknown;
      try {
        canonicalSessionKey(key);
      } catch (e) {
        caught = e;
      }
      expect(isWardenError(caught, 'INVALID_PARAMS')).toBe(true);
      expect((caught as Error).message).toMatch(/^malformed session key "/);
    },
  );
});

describe('sessionKind, isGroupKey, groupIsolationKey', () => {
  it('maps keys to the SessionRow kind of §4.5', () => {
    const kinds = [
      'agent:main:telegram:group:1',
      'agent:main:discord:channel:2',
      'agent:main:matrix:room:!r:s',
      'global',
      'unknown',
      'agent:x::y',
      'main',
      'agent:main:direct:p',
      'cron:j',
      'hook:h',
      'agent:main:subagent:s',
      'legacy',
      'node-1',
    ].map((k) => sessionKind(parseSessionKey(k)));
    expect(kinds).toEqual([
      'group',
      'group',
      'group',
      'global',
      'unknown',
      'unknown',
      'direct',
      'direct',
      'direct',
      'direct',
      'direct',
      'direct',
      'direct',
    ]);
  });

  it('isGroupKey is true only for group, channel and room keys', () => {
    expect(isGroupKey(parseSessionKey('agent:main:telegram:group:1'))).toBe(true);
    expect(isGroupKey(parseSessionKey('agent:main:slack:channel:c'))).toBe(true);
    expect(isGroupKey(parseSessionKey('agent:main:matrix:room:!r'))).toBe(true);
    expect(isGroupKey(parseSessionKey('agent:main:telegram:direct:1'))).toBe(false);
    expect(isGroupKey(parseSessionKey('main'))).toBe(false);
  });

  it('separates groups, topics and threads', () => {
    const keys = [
      'agent:main:telegram:group:-100123',
      'agent:main:telegram:group:-100123:topic:42',
      'agent:main:telegram:group:-100123:topic:43',
      'agent:main:telegram:group:-100124',
      'agent:main:slack:channel:c1',
      'agent:main:slack:channel:c1:thread:1',
      'agent:main:slack:work:channel:c1',
      'agent:main:discord:channel:c1',
      'agent:main:matrix:room:!A:s',
      'agent:main:matrix:room:!a:s',
    ];
    const isolation = keys.map((k) => groupIsolationKey(parseSessionKey(k)));
    expect(new Set(isolation).size).toBe(keys.length);
    expect(isolation[1]).toBe('telegram:group:-100123:topic:42');
    expect(isolation[6]).toBe('slack:work:channel:c1');
  });

  it('is null for non-group keys', () => {
    expect(groupIsolationKey(parseSessionKey('agent:main:direct:p'))).toBeNull();
    expect(groupIsolationKey(parseSessionKey('global'))).toBeNull();
  });
});

describe('normalizeAgentId', () => {
  it.each([
    ['Main', 'main'],
    ['  ops  ', 'ops'],
    ['My Agent', 'my-agent'],
    ['--x--', 'x'],
    ['_x!', 'x'],
    ['a__b', 'a__b'],
    ['!!!', 'main'],
    ['', 'main'],
    ['ünïcode', 'n-code'],
    ['a'.repeat(70), 'a'.repeat(64)],
    [`${'a'.repeat(63)}!b`, `${'a'.repeat(63)}-`],
  ])('%j → %j', (raw, want) => {
    expect(normalizeAgentId(raw)).toBe(want);
  });
});

/** Keys assembled from the grammar's own tokens, so properties reach the interesting branches. */
const TOKENS = [
  'agent',
  'AGENT',
  'main',
  'Main',
  'ops',
  'telegram',
  'signal',
  'Signal',
  'matrix',
  'group',
  'GROUP',
  'channel',
  'room',
  'direct',
  'dm',
  'DM',
  'thread',
  'topic',
  'cron',
  'run',
  'hook',
  'subagent',
  'acp',
  'slash',
  'node-1',
  'dashboard',
  'incognito-a',
  'internal-session-effects',
  'global',
  'unknown',
  '',
  ' ',
  'AbC',
  '-100123',
  '42',
  '!Room',
  'İ',
  'K',
  'ß',
];
const structuredKey = fc
  .array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 4 })), {
    minLength: 1,
    maxLength: 8,
  })
  .map((parts) => parts.join(':'));
const anyKey = fc.oneof(structuredKey, fc.string({ unit: 'binary', maxLength: 40 }));
const options = fc.record({
  agentId: fc.option(fc.oneof(fc.constantFrom('main', 'Ops', 'a b'), fc.string()), {
    nil: undefined,
  }),
  mainKey: fc.option(fc.constantFrom('main', 'home', 'Work'), { nil: undefined }),
});

describe('properties', () => {
  it('canonicalisation is idempotent, and parse(canonical) has the same kind', () => {
    fc.assert(
      fc.property(anyKey, options, (raw, opts) => {
        const parsed = parseSessionKey(raw, opts);
        if (parsed.kind === 'malformed_agent') {
          expect(() => canonicalSessionKey(raw, opts)).toThrow(/malformed session key/);
          return;
        }
        const canonical = canonicalSessionKey(raw, opts);
        expect(canonicalSessionKey(canonical, opts)).toBe(canonical);
        expect(parseSessionKey(canonical, opts).kind).toBe(parsed.kind);
        expect(parseSessionKey(canonical, opts).canonical).toBe(canonical);
      }),
      { numRuns: 2_000 },
    );
  });

  it('a parsed key is scoped exactly when its canonical form is not a sentinel', () => {
    fc.assert(
      fc.property(anyKey, (raw) => {
        const parsed = parseSessionKey(raw);
        if (parsed.kind === 'malformed_agent') return;
        const sentinel = parsed.kind === 'global' || parsed.kind === 'unknown';
        expect(parsed.canonical.startsWith('agent:')).toBe(!sentinel);
      }),
    );
  });

  it('normalizeAgentId output always matches the agent-id pattern, and is idempotent', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 100 }), fc.constantFrom('_', '-_-', 'İ')),
        (raw) => {
          const id = normalizeAgentId(raw);
          expect(id).toMatch(/^[a-z0-9][a-z0-9_-]{0,63}$/);
          expect(AGENT_ID_PATTERN.test(id)).toBe(true);
          expect(normalizeAgentId(id)).toBe(id);
        },
      ),
    );
  });
});
