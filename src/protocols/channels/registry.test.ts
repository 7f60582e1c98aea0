import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError, type WardenError } from '../../core/index.ts';
import {
  CHANNEL_DESCRIPTORS,
  channelDescriptor,
  ChannelRegistry,
  replyFor,
  requireImplemented,
  sessionKeyFor,
  type SessionKeyOptions,
  type SessionKeySource,
} from './registry.ts';
import {
  CHANNEL_KINDS,
  type ChannelDriver,
  type ChannelKind,
  type InboundMessage,
  type InboundSink,
} from './types.ts';

function thrown(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected a WardenError');
}

function fakeDriver(kind: string, name = 'one', log: string[] = []): ChannelDriver {
  return {
    id: `${kind}:${name}`,
    kind: kind as ChannelKind,
    name,
    capabilities: CHANNEL_DESCRIPTORS.webhook.capabilities,
    start: () => {
      log.push(`start ${name}`);
      return name === 'broken' ? Promise.reject(new Error('no')) : Promise.resolve();
    },
    stop: () => {
      log.push(`stop ${name}`);
      return Promise.resolve();
    },
    send: () => Promise.resolve(),
  };
}

describe('channel descriptors', () => {
  it('records realistic limits and marks only webhook implemented', () => {
    const table = CHANNEL_KINDS.map((k) => [
      k,
      CHANNEL_DESCRIPTORS[k].implemented,
      CHANNEL_DESCRIPTORS[k].capabilities.maxTextChars,
    ]);
    expect(table).toEqual([
      ['whatsapp', false, 4096],
      ['telegram', false, 4096],
      ['slack', false, 40_000],
      ['discord', false, 2000],
      ['webhook', true, 4096],
    ]);
    for (const k of CHANNEL_KINDS) {
      const d = CHANNEL_DESCRIPTORS[k];
      expect(d.kind).toBe(k);
      expect(d.summary.startsWith(d.implemented ? 'implemented' : 'descriptor only')).toBe(true);
      expect(d.capabilities.media).toBe(d.capabilities.maxMediaBytes > 0);
    }
    expect(CHANNEL_DESCRIPTORS.telegram.capabilities.threadSegment).toBe('topic');
    expect(Object.isFrozen(CHANNEL_DESCRIPTORS.slack.capabilities)).toBe(true);
  });

  it('refuses unknown kinds and unimplemented ones with INVALID_PARAMS', () => {
    const unknown = thrown(() => channelDescriptor('irc'));
    expect(unknown.code).toBe('INVALID_PARAMS');
    expect(unknown.message).toBe(
      "unknown channel 'irc': expected one of whatsapp, telegram, slack, discord, webhook",
    );
    const stub = thrown(() => requireImplemented('telegram'));
    expect(stub.code).toBe('INVALID_PARAMS');
    expect(stub.message).toContain("channel 'telegram' is not implemented");
    expect(stub.message).toContain('use the webhook channel');
    expect(requireImplemented('webhook').kind).toBe('webhook');
  });
});

describe('ChannelRegistry', () => {
  it('registers implemented drivers and refuses the rest', () => {
    const registry = new ChannelRegistry();
    registry.register(fakeDriver('webhook', 'crm'));
    for (const kind of ['whatsapp', 'telegram', 'slack', 'discord']) {
      const e = thrown(() => registry.register(fakeDriver(kind)));
      expect(e.code).toBe('INVALID_PARAMS');
      expect(e.message).toContain('not implemented');
    }
    expect(thrown(() => registry.register(fakeDriver('matrix'))).message).toContain(
      "unknown channel 'matrix'",
    );
    expect(thrown(() => registry.register(fakeDriver('webhook', 'crm'))).code).toBe(
      'ALREADY_EXISTS',
    );
    expect(registry.list().map((d) => d.id)).toEqual(['webhook:crm']);
    expect(registry.get('webhook:crm').name).toBe('crm');
    expect(registry.find('webhook', 'crm')?.id).toBe('webhook:crm');
    expect(registry.find('webhook', 'nope')).toBeUndefined();
    expect(thrown(() => registry.get('webhook:nope')).code).toBe('NOT_FOUND');
  });

  it('startAll stops the drivers it started when one fails', async () => {
    const log: string[] = [];
    const registry = new ChannelRegistry();
    registry.register(fakeDriver('webhook', 'a', log));
    registry.register(fakeDriver('webhook', 'broken', log));
    registry.register(fakeDriver('webhook', 'c', log));
    const sink: InboundSink = () => Promise.resolve({ status: 'ignored', reason: 'test' });
    await expect(registry.startAll(sink)).rejects.toThrow('no');
    expect(log).toEqual(['start a', 'start broken', 'stop a']);
    log.length = 0;
    await registry.stopAll();
    expect(log).toEqual(['stop a', 'stop broken', 'stop c']);
  });
});

describe('sessionKeyFor (reference §6.1)', () => {
  const dm: SessionKeySource = { channel: 'webhook', from: 'Alice', chatType: 'direct' };
  const cases: [string, SessionKeySource, SessionKeyOptions, string][] = [
    ['dm main', dm, { agentId: 'main', dmScope: 'main' }, 'agent:main:main'],
    [
      'dm main, mainKey',
      dm,
      { agentId: 'Ops', dmScope: 'main', mainKey: 'Home' },
      'agent:ops:home',
    ],
    ['dm per-peer', dm, { agentId: 'main', dmScope: 'per-peer' }, 'agent:main:direct:alice'],
    [
      'dm per-channel-peer',
      dm,
      { agentId: 'main', dmScope: 'per-channel-peer' },
      'agent:main:webhook:direct:alice',
    ],
    [
      'dm per-account-channel-peer',
      { ...dm, accountId: 'CRM' },
      { agentId: 'main', dmScope: 'per-account-channel-peer' },
      'agent:main:webhook:crm:direct:alice',
    ],
    [
      'dm per-account-channel-peer, no account',
      dm,
      { agentId: 'main', dmScope: 'per-account-channel-peer' },
      'agent:main:webhook:default:direct:alice',
    ],
    [
      'dm thread ignored',
      { ...dm, threadId: 't1' },
      { agentId: 'main', dmScope: 'per-peer' },
      'agent:main:direct:alice',
    ],
    [
      'group',
      { channel: 'webhook', from: 'bob', chatType: 'group', groupId: 'Room-7' },
      { agentId: 'main', dmScope: 'main' },
      'agent:main:webhook:group:room-7',
    ],
    [
      'group thread',
      { channel: 'webhook', from: 'bob', chatType: 'group', groupId: 'room-7', threadId: 'T-1' },
      { agentId: 'ops', dmScope: 'per-peer' },
      'agent:ops:webhook:group:room-7:thread:t-1',
    ],
    [
      'telegram topic',
      { channel: 'telegram', from: '1', chatType: 'group', groupId: '-100123', threadId: '42' },
      { agentId: 'main', dmScope: 'main' },
      'agent:main:telegram:group:-100123:topic:42',
    ],
    [
      'parts trimmed',
      { channel: 'slack', from: ' U1 ', chatType: 'direct' },
      { agentId: 'main', dmScope: 'per-channel-peer' },
      'agent:main:slack:direct:u1',
    ],
  ];
  it.each(cases)('%s', (_name, msg, options, key) => {
    expect(sessionKeyFor(msg, options)).toBe(key);
  });

  it('refuses bad input with INVALID_PARAMS', () => {
    const group: SessionKeySource = { channel: 'webhook', from: 'b', chatType: 'group' };
    expect(thrown(() => sessionKeyFor(group, { agentId: 'main', dmScope: 'main' })).message).toBe(
      'sessionKeyFor: groupId: expected a non-empty string (got undefined)',
    );
    expect(thrown(() => sessionKeyFor(dm, { agentId: 'no way', dmScope: 'main' })).code).toBe(
      'INVALID_PARAMS',
    );
    const blank: SessionKeySource = { ...dm, from: '  ' };
    expect(thrown(() => sessionKeyFor(blank, { agentId: 'a', dmScope: 'per-peer' })).message).toBe(
      'sessionKeyFor: from: expected a non-empty string (got "  ")',
    );
  });

  const idArb = fc.stringMatching(/^[A-Za-z0-9_.+@-]{1,20}$/);
  it('always gives a lower-case key under agent:<id>: with the documented shape', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...CHANNEL_KINDS),
        fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,10}$/),
        idArb,
        fc.option(idArb, { nil: undefined }),
        fc.option(idArb, { nil: undefined }),
        fc.constantFrom(
          'main',
          'per-peer',
          'per-channel-peer',
          'per-account-channel-peer' as const,
        ),
        (channel, agentId, from, groupId, threadId, dmScope) => {
          const chatType = groupId === undefined ? 'direct' : 'group';
          const key = sessionKeyFor(
            { channel, from, chatType, groupId, threadId },
            { agentId, dmScope },
          );
          expect(key).toBe(key.toLowerCase());
          expect(key.startsWith(`agent:${agentId.toLowerCase()}:`)).toBe(true);
          if (chatType === 'group') {
            const seg = CHANNEL_DESCRIPTORS[channel].capabilities.threadSegment;
            const tail = threadId === undefined ? '' : `:${seg}:${threadId}`;
            expect(key).toBe(`agent:${agentId}:${channel}:group:${groupId}${tail}`.toLowerCase());
          } else {
            expect(
              key.endsWith(dmScope === 'main' ? ':main' : `:direct:${from.toLowerCase()}`),
            ).toBe(true);
          }
        },
      ),
    );
  });
});

describe('replyFor', () => {
  const base: InboundMessage = {
    channel: 'webhook',
    from: 'alice',
    chatType: 'direct',
    text: 'hi',
    messageId: 'm1',
    receivedAt: 0,
    agentId: 'main',
    sessionKey: 'agent:main:main',
  };
  it('answers the sender, or the group, in the thread, to the callback', () => {
    expect(replyFor(base, 'yo')).toEqual({
      channel: 'webhook',
      to: 'alice',
      text: 'yo',
      replyToId: 'm1',
    });
    const group: InboundMessage = {
      ...base,
      chatType: 'group',
      groupId: 'g',
      threadId: 't',
      replyTo: { url: 'https://example.com/cb' },
    };
    expect(replyFor(group, 'yo')).toEqual({
      channel: 'webhook',
      to: 'g',
      text: 'yo',
      replyToId: 'm1',
      threadId: 't',
      replyTo: { url: 'https://example.com/cb' },
    });
  });
});
