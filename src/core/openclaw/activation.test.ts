import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  type ActivationInput,
  compileMentionPatterns,
  hasNestedUnboundedQuantifier,
  MENTION_SCAN_MAX_CHARS,
  normalizeGroupActivation,
  shouldActivate,
} from './activation.ts';

const group = (over: Partial<ActivationInput> = {}): ActivationInput => ({
  activation: 'mention',
  isGroup: true,
  text: 'just chatting',
  ...over,
});

describe('shouldActivate (§6.3)', () => {
  it('direct messages always activate', () => {
    expect(shouldActivate({ isGroup: false, text: 'hi', activation: 'mention' })).toEqual({
      activate: true,
      reason: 'not-group',
    });
  });

  it('always mode activates every group message', () => {
    expect(shouldActivate(group({ activation: 'always' }))).toEqual({
      activate: true,
      reason: 'always',
    });
  });

  it('mention is the default activation', () => {
    expect(shouldActivate(group({ activation: undefined }))).toEqual({
      activate: false,
      reason: 'no-mention',
    });
    expect(shouldActivate(group({ activation: null })).activate).toBe(false);
  });

  it('mention mode: an explicit mention flag activates', () => {
    expect(shouldActivate(group({ mentioned: true }))).toEqual({
      activate: true,
      reason: 'mention',
    });
  });

  it('mention mode: a reply to the bot activates', () => {
    expect(shouldActivate(group({ replyToBot: true }))).toEqual({
      activate: true,
      reason: 'reply',
    });
  });

  it('mention mode: a command activates', () => {
    expect(shouldActivate(group({ text: '/status' }))).toEqual({
      activate: true,
      reason: 'command',
    });
    expect(shouldActivate(group({ text: '  /queue collect' })).reason).toBe('command');
    // A lone slash, "//" or "/ x" is not a command.
    for (const text of ['/', '// note', '/ x', 'a /cmd']) {
      expect(shouldActivate(group({ text })).activate).toBe(false);
    }
  });

  it('mention mode: a bot name as @name or a whole word activates', () => {
    const botNames = ['Claw', '@Molty'];
    for (const text of ['@claw ping', 'hey CLAW, help', 'ask molty.', 'cc @Molty', 'claw']) {
      expect(shouldActivate(group({ text, botNames }))).toEqual({
        activate: true,
        reason: 'mention',
      });
    }
    for (const text of ['clawdbot', 'outclaw', 'moltyx', 'claw_1']) {
      expect(shouldActivate(group({ text, botNames })).activate).toBe(false);
    }
  });

  it('mention mode: bot names with regex characters match literally', () => {
    expect(shouldActivate(group({ text: 'yo c.3po', botNames: ['C.3PO'] })).activate).toBe(true);
    expect(shouldActivate(group({ text: 'yo cx3po', botNames: ['C.3PO'] })).activate).toBe(false);
    expect(shouldActivate(group({ text: 'x', botNames: ['', '   ', '@'] })).activate).toBe(false);
  });

  it('mention mode: a mentionPatterns regex activates, case-insensitively', () => {
    const mentionPatterns = ['\\bhey\\s+bot\\b'];
    expect(shouldActivate(group({ text: 'HEY   Bot!', mentionPatterns }))).toEqual({
      activate: true,
      reason: 'pattern',
    });
    expect(shouldActivate(group({ text: 'they bottle', mentionPatterns })).activate).toBe(false);
  });

  it('mention mode: an invalid pattern is ignored, the others still apply', () => {
    const mentionPatterns = ['(unclosed', '[z-a]', 'bot'];
    expect(compileMentionPatterns(mentionPatterns)).toHaveLength(1);
    expect(shouldActivate(group({ text: 'ok bot', mentionPatterns })).reason).toBe('pattern');
  });

  it('mention mode: catastrophic patterns are ignored', () => {
    const evil = ['(a+)+$', '(\\w*)*x', '((a+))+b', '(?:a|b+){2,}c', '(x+x+)+y'];
    expect(compileMentionPatterns(evil)).toEqual([]);
    const started = performance.now();
    const decision = shouldActivate(
      group({ text: `${'a'.repeat(5_000)}!`, mentionPatterns: evil }),
    );
    expect(decision.activate).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('mention mode: only the first 16 KiB of the text is scanned for names and patterns', () => {
    const tail = `${'x '.repeat(MENTION_SCAN_MAX_CHARS)} claw`;
    expect(shouldActivate(group({ text: tail, botNames: ['claw'] })).activate).toBe(false);
    expect(shouldActivate(group({ text: tail, mentionPatterns: ['claw'] })).activate).toBe(false);
    expect(shouldActivate(group({ text: `claw ${tail}`, botNames: ['claw'] })).activate).toBe(true);
  });

  it('a message that does not address the bot is stored as context only (no-mention)', () => {
    expect(
      shouldActivate(group({ text: 'lunch?', botNames: ['claw'], mentionPatterns: ['bot'] })),
    ).toEqual({ activate: false, reason: 'no-mention' });
  });
});

describe('hasNestedUnboundedQuantifier', () => {
  it.each([
    ['(a+)+', true],
    ['(a*)*', true],
    ['(a+){3,}', true],
    ['((ab+))*', true],
    ['(a+)?', false],
    ['(a+){2}', false],
    ['(ab)+', false],
    ['\\(a+\\)+', false],
    ['[(a+)]+', false],
    ['[]a+', false],
    ['\\bclaw\\b', false],
    ['^hey\\s+bot', false],
    ['(?:@?claw|molty)\\b', false],
  ])('%s → %s', (source, want) => {
    expect(hasNestedUnboundedQuantifier(source)).toBe(want);
  });
});

describe('normalizeGroupActivation', () => {
  it('accepts mention and always, any case; nothing else', () => {
    expect(normalizeGroupActivation(' Always ')).toBe('always');
    expect(normalizeGroupActivation('MENTION')).toBe('mention');
    for (const raw of ['', 'never', null, true, 1])
      expect(normalizeGroupActivation(raw)).toBeNull();
  });
});

describe('activation properties', () => {
  const input = fc.record({
    activation: fc.constantFrom('mention' as const, 'always' as const, undefined),
    isGroup: fc.boolean(),
    text: fc.string({ maxLength: 60 }),
    mentioned: fc.option(fc.boolean(), { nil: undefined }),
    replyToBot: fc.option(fc.boolean(), { nil: undefined }),
    mentionPatterns: fc.option(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), {
      nil: undefined,
    }),
    botNames: fc.option(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), {
      nil: undefined,
    }),
  });

  it('never throws; DMs and always-mode groups always activate; no-mention is the only refusal', () => {
    fc.assert(
      fc.property(input, (i) => {
        const d = shouldActivate(i);
        if (!i.isGroup) expect(d).toEqual({ activate: true, reason: 'not-group' });
        else if (i.activation === 'always') expect(d).toEqual({ activate: true, reason: 'always' });
        expect(d.activate).toBe(d.reason !== 'no-mention');
      }),
    );
  });

  it('an explicit mention or a reply to the bot always activates a group message', () => {
    fc.assert(
      fc.property(input, fc.boolean(), (i, flag) => {
        const d = shouldActivate({ ...i, isGroup: true, mentioned: flag, replyToBot: !flag });
        expect(d.activate).toBe(true);
      }),
    );
  });

  it('a bot name written as @name anywhere in the scanned text activates', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,10}$/),
        fc.string({ maxLength: 30 }),
        fc.string({ maxLength: 30 }),
        (name, before, after) => {
          const text = `${before} @${name} ${after}`;
          expect(shouldActivate(group({ text, botNames: [name] })).activate).toBe(true);
        },
      ),
    );
  });
});
