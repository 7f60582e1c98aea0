import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../errors.ts';
import { checkParams } from '../params.ts';
import {
  applyPatch,
  deleteScope,
  newOpenClawEntry,
  type OpenClawEntry,
  patchScope,
  readOpenClawEntry,
  resolvedView,
  rotateSessionId,
  sessionsCompactParams,
  sessionsDeleteParams,
  sessionsListParams,
  type SessionsPatchParams,
  sessionsPatchParams,
  sessionsPreviewParams,
  sessionsResetParams,
  sessionsResolveParams,
} from './session-entry.ts';

const WHERE = 'invalid sessions.patch params';

function patch(value: unknown): SessionsPatchParams {
  return checkParams(WHERE, sessionsPatchParams, value);
}

/** The INVALID_PARAMS message of `fn`, or a failure when it does not throw one. */
function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isWardenError(e, 'INVALID_PARAMS')) return e.message;
    throw e;
  }
  throw new Error('expected INVALID_PARAMS');
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isWardenError(e)) return e.code;
    throw e;
  }
  return 'none';
}

const KEY = 'agent:main:main';
const base: OpenClawEntry = newOpenClawEntry({ key: KEY, sessionId: 'sess-1' });

describe('sessions.patch params: key', () => {
  it('takes key, or sessionKey as its alias', () => {
    expect(patch({ key: KEY }).key).toBe(KEY);
    expect(patch({ sessionKey: KEY }).key).toBe(KEY);
    expect(patch({ key: KEY, sessionKey: KEY }).key).toBe(KEY);
    expect(patch({ sessionKey: KEY })).not.toHaveProperty('sessionKey');
  });

  it('needs one of them, and they must agree', () => {
    expect(invalid(() => patch({ label: 'x' }))).toBe(
      `${WHERE}: key: expected the session key (key, or its alias sessionKey) (got undefined)`,
    );
    expect(invalid(() => patch({ key: 'a', sessionKey: 'b' }))).toBe(
      `${WHERE}: sessionKey: expected the same key as key ('a'); sessionKey is only its alias (got "b")`,
    );
    expect(invalid(() => patch(null))).toBe(`${WHERE}: expected a params object (got null)`);
  });

  it('accepts and drops unknown keys (newer clients add fields)', () => {
    const p = patch({ key: KEY, someFutureField: { x: 1 }, label: 'ok' });
    expect(p).toEqual({ key: KEY, label: 'ok' });
    expect(patchScope(p)).toBe('operator.write');
  });
});

describe('sessions.patch params: labels', () => {
  it('trims and keeps labels of 1–64 characters', () => {
    expect(patch({ key: KEY, label: '  My session  ' }).label).toBe('My session');
    expect(patch({ key: KEY, label: 'x'.repeat(64) }).label).toBe('x'.repeat(64));
  });

  it('rejects longer labels instead of truncating them, and empty ones', () => {
    expect(invalid(() => patch({ key: KEY, label: 'x'.repeat(65) }))).toBe(
      `${WHERE}: label: expected at most 64 characters for a label; it is never truncated (got 65 characters)`,
    );
    expect(invalid(() => patch({ key: KEY, label: '   ' }))).toBe(
      `${WHERE}: label: expected a label (1–64 characters after trimming) (got "   ")`,
    );
    expect(invalid(() => patch({ key: KEY, label: 7 }))).toContain('label: expected a label');
  });

  it('property: a label is accepted exactly when its trimmed length is 1..64, unchanged but trimmed', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 90 }), (raw) => {
        const t = raw.trim();
        const ok = t.length >= 1 && t.length <= 64;
        const parsed = sessionsPatchParams.safeParse({ key: KEY, label: raw });
        expect(parsed.success).toBe(ok);
        if (parsed.success) expect(parsed.data.label).toBe(t);
      }),
    );
  });

  it('null clears a label', () => {
    expect(patch({ key: KEY, label: null }).label).toBeNull();
  });
});

describe('sessions.patch params: tuning knobs', () => {
  const ok: [string, unknown, unknown][] = [
    ['thinkingLevel', 'off', 'off'],
    ['thinkingLevel', 'minimal', 'minimal'],
    ['thinkingLevel', 'XHigh', 'xhigh'],
    ['thinkingLevel', 'med', 'medium'],
    ['thinkingLevel', 'on', 'low'],
    ['verboseLevel', 'full', 'full'],
    ['verboseLevel', 'true', 'on'],
    ['traceLevel', 'raw', 'raw'],
    ['reasoningLevel', 'stream', 'stream'],
    ['reasoningLevel', 'on', 'on'],
    ['reasoningLevel', 'off', null],
    ['responseUsage', 'off', null],
    ['responseUsage', 'on', 'tokens'],
    ['responseUsage', 'full', 'full'],
    ['elevatedLevel', 'off', 'off'],
    ['elevatedLevel', 'ask', 'ask'],
    ['elevatedLevel', 'auto', 'full'],
    ['execHost', 'auto', 'auto'],
    ['execHost', 'node', 'node'],
    ['execSecurity', 'allowlist', 'allowlist'],
    ['execAsk', 'on-miss', 'on-miss'],
    ['permissionMode', 'read-only', 'read-only'],
    ['sandboxMode', 'off', 'off'],
    ['fastMode', true, true],
    ['fastMode', 'auto', 'auto'],
    ['groupActivation', 'always', 'always'],
    ['queueMode', 'interrupt', 'interrupt'],
    ['sendPolicy', 'deny', 'deny'],
    ['sendPolicy', null, null],
    ['execNode', ' mac-mini ', 'mac-mini'],
    ['ttlMinutes', 120, 120],
    ['color', 'Blue', 'blue'],
    ['contextWindow', 200000, '200000'],
  ];
  it.each(ok)('%s %j → %j', (field, value, expected) => {
    expect(patch({ key: KEY, [field]: value })[field as keyof SessionsPatchParams]).toEqual(
      expected,
    );
  });

  const bad: [string, unknown, string][] = [
    [
      'thinkingLevel',
      'turbo',
      "expected one of 'off', 'minimal', 'low', 'medium', 'high', 'xhigh'",
    ],
    ['verboseLevel', 'loud', "expected one of 'off', 'on', 'full'"],
    ['reasoningLevel', 'deep', "expected one of 'off', 'on', 'stream'"],
    ['responseUsage', 'all', "expected one of 'off', 'tokens', 'full', 'on'"],
    ['elevatedLevel', 'root', "expected one of 'off', 'on', 'ask', 'full'"],
    ['execHost', 'remote-ssh', "expected one of 'auto', 'sandbox', 'gateway', 'node'"],
    ['execSecurity', 'none', "expected one of 'deny', 'allowlist', 'full'"],
    ['execAsk', 'sometimes', "expected one of 'off', 'on-miss', 'always'"],
    ['permissionMode', 'root', "expected one of 'read-only', 'guarded', 'workspace', 'full'"],
    ['sandboxMode', 'on', "expected one of 'off'"],
    ['fastMode', 'yes', "expected true, false or 'auto'"],
    ['groupActivation', 'never', "expected one of 'mention', 'always'"],
    ['queueMode', 'queue', "expected one of 'steer', 'followup', 'collect', 'interrupt'"],
    ['ttlMinutes', 121, 'expected an integer from 1 to 120'],
    ['execNode', '  ', 'expected a node id or name'],
  ];
  it.each(bad)('%s %j is rejected', (field, value, message) => {
    expect(invalid(() => patch({ key: KEY, [field]: value }))).toContain(`${field}: ${message}`);
  });

  it("rejects sendPolicy 'inherit' and says how to inherit", () => {
    expect(invalid(() => patch({ key: KEY, sendPolicy: 'inherit' }))).toBe(
      `${WHERE}: sendPolicy: expected 'allow' or 'deny'; 'inherit' is not accepted — send null to clear the override and inherit the default (got "inherit")`,
    );
  });

  it('rejects spawnedBy and spawnDepth as immutable', () => {
    expect(invalid(() => patch({ key: KEY, spawnedBy: 'agent:main:main' }))).toBe(
      `${WHERE}: spawnedBy: spawnedBy is immutable: it is set only when a subagent session is created, never by sessions.patch (got "agent:main:main")`,
    );
    expect(invalid(() => patch({ key: KEY, spawnDepth: null }))).toContain(
      'spawnDepth: spawnDepth is immutable',
    );
  });

  it('lists every problem at once', () => {
    const message = invalid(() => patch({ key: KEY, execAsk: 'x', queueMode: 'y' }));
    expect(message).toContain('execAsk:');
    expect(message).toContain('queueMode:');
  });
});

describe('patchScope (§2.6, decided per call)', () => {
  it.each([
    [{ label: 'x' }, 'operator.write'],
    [{ pinned: true, archived: false, unread: true, color: 'red' }, 'operator.write'],
    [{ model: 'openai/gpt-5', thinkingLevel: 'high', fastMode: 'auto' }, 'operator.write'],
    [{ permissionMode: 'workspace' }, 'operator.write'],
    [{ permissionMode: null }, 'operator.write'],
    [{ permissionMode: 'full' }, 'operator.admin'],
    [{ execSecurity: 'full' }, 'operator.admin'],
    [{ label: 'x', elevatedLevel: 'on' }, 'operator.admin'],
    [{ sendPolicy: 'deny' }, 'operator.admin'],
    [{ statusNote: 'busy' }, 'operator.admin'],
    [{}, 'operator.write'],
  ])('%j needs %s', (fields, scope) => {
    expect(patchScope(patch({ key: KEY, ...fields }))).toBe(scope);
  });

  it('property: write-only fields never need admin; adding an exec field always does', () => {
    const writeField = fc.oneof(
      fc.record({ label: fc.constantFrom('a', 'b', null) }, { requiredKeys: [] }),
      fc.record({ pinned: fc.boolean(), archived: fc.boolean() }, { requiredKeys: [] }),
      fc.record(
        {
          thinkingLevel: fc.constantFrom('off', 'high'),
          permissionMode: fc.constantFrom('read-only', 'guarded', 'workspace'),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(writeField, fc.constantFrom('execHost', 'execAsk', 'queueMode'), (f, admin) => {
        expect(patchScope(patch({ key: KEY, ...f }))).toBe('operator.write');
        const value = { execHost: 'node', execAsk: 'always', queueMode: 'collect' }[admin];
        expect(patchScope(patch({ key: KEY, ...f, [admin]: value }))).toBe('operator.admin');
      }),
    );
  });
});

describe('applyPatch', () => {
  const ctx = { key: KEY, labelTakenBy: () => null };

  it('sets canonical values, bumps the lifecycle revision and leaves the input alone', () => {
    const next = applyPatch(base, patch({ key: KEY, label: ' L ', thinkingLevel: 'med' }), ctx);
    expect(next).toMatchObject({ label: 'L', thinkingLevel: 'medium', lifecycleRevision: '1' });
    expect(base.label).toBeUndefined();
    expect(applyPatch(next, patch({ key: KEY }), ctx).lifecycleRevision).toBe('2');
  });

  it("null removes a field; 'off' removes reasoningLevel and responseUsage", () => {
    const set = applyPatch(
      base,
      patch({ key: KEY, execHost: 'node', reasoningLevel: 'on', responseUsage: 'full' }),
      ctx,
    );
    const cleared = applyPatch(
      set,
      patch({ key: KEY, execHost: null, reasoningLevel: 'off', responseUsage: 'off' }),
      ctx,
    );
    expect(cleared).not.toHaveProperty('execHost');
    expect(cleared).not.toHaveProperty('reasoningLevel');
    expect(cleared).not.toHaveProperty('responseUsage');
  });

  it('keeps elevatedLevel off explicitly (it overrides a default)', () => {
    expect(applyPatch(base, patch({ key: KEY, elevatedLevel: 'off' }), ctx).elevatedLevel).toBe(
      'off',
    );
  });

  it('rejects a label another session holds, and allows its own', () => {
    const taken = {
      key: KEY,
      labelTakenBy: (l: string) => (l === 'Work' ? 'agent:main:other' : null),
    };
    expect(invalid(() => applyPatch(base, patch({ key: KEY, label: 'Work' }), taken))).toBe(
      'invalid sessions.patch params: label: label already in use by agent:main:other; labels are unique, pick another or clear it there first',
    );
    const own = { key: KEY, labelTakenBy: () => KEY };
    expect(applyPatch(base, patch({ key: KEY, label: 'Work' }), own).label).toBe('Work');
  });

  it('splits provider/model and clears both with null', () => {
    const a = applyPatch(base, patch({ key: KEY, model: 'openrouter/meta/llama-3' }), ctx);
    expect(a).toMatchObject({ modelProvider: 'openrouter', model: 'meta/llama-3' });
    const b = applyPatch(a, patch({ key: KEY, model: 'sonnet' }), ctx);
    expect(b.model).toBe('sonnet');
    expect(b).not.toHaveProperty('modelProvider');
    const c = applyPatch(a, patch({ key: KEY, model: null }), ctx);
    expect(c).not.toHaveProperty('model');
    expect(c).not.toHaveProperty('modelProvider');
  });

  it('clearing the status note clears attention', () => {
    const a = applyPatch(base, patch({ key: KEY, statusNote: 'waiting', attention: 'hand' }), ctx);
    expect(a).toMatchObject({ statusNote: 'waiting', attention: 'hand' });
    const b = applyPatch(a, patch({ key: KEY, statusNote: null }), ctx);
    expect(b).not.toHaveProperty('statusNote');
    expect(b).not.toHaveProperty('attention');
  });

  it('CONFLICT when the session id or lifecycle revision changed', () => {
    expect(codeOf(() => applyPatch(base, patch({ key: KEY, expectedSessionId: 'old' }), ctx))).toBe(
      'CONFLICT',
    );
    expect(
      codeOf(() => applyPatch(base, patch({ key: KEY, expectedLifecycleRevision: '3' }), ctx)),
    ).toBe('CONFLICT');
    const ok = patch({ key: KEY, expectedSessionId: 'sess-1', expectedLifecycleRevision: 0 });
    expect(applyPatch(base, ok, ctx).lifecycleRevision).toBe('1');
  });
});

describe('resolvedView', () => {
  const defaults = { modelProvider: 'anthropic', model: 'claude', thinkingLevel: 'low' as const };

  it('falls back to defaults and omits knobs set nowhere', () => {
    expect(resolvedView(base, defaults)).toEqual({
      modelProvider: 'anthropic',
      model: 'claude',
      agentRuntime: null,
      runtimeSelectionLocked: false,
      thinkingLevel: 'low',
    });
  });

  it('prefers the entry, and locks the runtime when the entry pins one', () => {
    const e: OpenClawEntry = {
      ...base,
      model: 'gpt-5',
      modelProvider: 'openai',
      agentRuntime: 'codex',
      thinkingLevel: 'high',
      execSecurity: 'deny',
    };
    expect(resolvedView(e, defaults)).toMatchObject({
      modelProvider: 'openai',
      model: 'gpt-5',
      agentRuntime: 'codex',
      runtimeSelectionLocked: true,
      thinkingLevel: 'high',
      execSecurity: 'deny',
    });
  });
});

describe('sessions.reset', () => {
  it('reason is new or reset, default reset', () => {
    expect(checkParams('r', sessionsResetParams, { key: KEY }).reason).toBe('reset');
    expect(checkParams('r', sessionsResetParams, { sessionKey: KEY, reason: 'new' }).reason).toBe(
      'new',
    );
    expect(invalid(() => checkParams('r', sessionsResetParams, { key: KEY, reason: 'wipe' }))).toBe(
      `r: reason: expected one of 'new', 'reset' (got "wipe")`,
    );
  });

  it('rotateSessionId keeps overrides, drops the status note and bumps the revision', () => {
    const e: OpenClawEntry = {
      ...base,
      label: 'L',
      thinkingLevel: 'high',
      statusNote: 'n',
      attention: 'flag',
    };
    const r = rotateSessionId(e, 'sess-2');
    expect(r).toMatchObject({
      sessionId: 'sess-2',
      label: 'L',
      thinkingLevel: 'high',
      lifecycleRevision: '1',
    });
    expect(r).not.toHaveProperty('statusNote');
    expect(r).not.toHaveProperty('attention');
    expect(codeOf(() => rotateSessionId(e, 'sess-1'))).toBe('INVALID_PARAMS');
    expect(codeOf(() => rotateSessionId(e, ''))).toBe('INVALID_PARAMS');
  });
});

describe('sessions.delete and sessions.compact params', () => {
  it('delete defaults and scope (write only with archivedOnly)', () => {
    const d = checkParams('d', sessionsDeleteParams, { key: KEY });
    expect(d).toMatchObject({ key: KEY, deleteTranscript: true, archivedOnly: false });
    expect(deleteScope(d)).toBe('operator.admin');
    expect(
      deleteScope(checkParams('d', sessionsDeleteParams, { key: KEY, archivedOnly: true })),
    ).toBe('operator.write');
  });

  it('compact: maxLines defaults to 400 and must be ≥ 1', () => {
    expect(checkParams('c', sessionsCompactParams, { key: KEY }).maxLines).toBe(400);
    expect(checkParams('c', sessionsCompactParams, { key: KEY, maxLines: 1 }).maxLines).toBe(1);
    expect(invalid(() => checkParams('c', sessionsCompactParams, { key: KEY, maxLines: 0 }))).toBe(
      'c: maxLines: expected a positive integer (got 0)',
    );
    expect(codeOf(() => checkParams('c', sessionsCompactParams, { key: KEY, maxLines: 2.5 }))).toBe(
      'INVALID_PARAMS',
    );
  });
});

describe('sessions.resolve, .preview and .list params', () => {
  it('resolve needs a selector and validates labels like patch', () => {
    expect(checkParams('r', sessionsResolveParams, { label: ' L ' })).toMatchObject({
      label: 'L',
      allowMissing: false,
    });
    expect(checkParams('r', sessionsResolveParams, { reference: { key: KEY } }).key).toBe(KEY);
    expect(invalid(() => checkParams('r', sessionsResolveParams, { agentId: 'main' }))).toContain(
      'expected a selector: key, sessionId, label, shortId or spawnedBy',
    );
    expect(
      invalid(() => checkParams('r', sessionsResolveParams, { label: 'x'.repeat(65) })),
    ).toContain('never truncated');
  });

  it('preview: 1–64 keys kept as asked, limit and maxChars bounded', () => {
    expect(checkParams('p', sessionsPreviewParams, { keys: ['b', 'a', 'b'] })).toEqual({
      keys: ['b', 'a', 'b'],
      limit: 12,
      maxChars: 240,
    });
    expect(
      checkParams('p', sessionsPreviewParams, { keys: ['a'], limit: 1000, maxChars: 99999 }),
    ).toMatchObject({ limit: 256, maxChars: 4096 });
    expect(invalid(() => checkParams('p', sessionsPreviewParams, { keys: [] }))).toContain(
      'expected at least one key',
    );
    const keys = Array.from({ length: 65 }, (_, i) => `k${i}`);
    expect(invalid(() => checkParams('p', sessionsPreviewParams, { keys }))).toContain(
      'expected at most 64 keys',
    );
    expect(
      invalid(() => checkParams('p', sessionsPreviewParams, { keys: ['a'], limit: 0 })),
    ).toContain('limit: expected a positive integer');
    expect(
      invalid(() => checkParams('p', sessionsPreviewParams, { keys: ['a'], maxChars: 19 })),
    ).toContain('maxChars: expected an integer ≥ 20');
  });

  it('list: defaults (TS OpenClaw: global and unknown excluded), clamped limit', () => {
    expect(checkParams('l', sessionsListParams, {})).toMatchObject({
      limit: 200,
      offset: 0,
      includeGlobal: false,
      includeUnknown: false,
      archived: false,
      sortBy: 'updatedAt',
    });
    expect(checkParams('l', sessionsListParams, { limit: 5000 }).limit).toBe(1000);
    expect(checkParams('l', sessionsListParams, { limit: 0 }).limit).toBe(1);
    expect(checkParams('l', sessionsListParams, { search: '  Foo ' }).search).toBe('foo');
    expect(checkParams('l', sessionsListParams, { archived: 'all' }).archived).toBe('all');
    expect(
      invalid(() => checkParams('l', sessionsListParams, { label: 'x'.repeat(65) })),
    ).toContain('label: expected at most 64 characters');
    expect(invalid(() => checkParams('l', sessionsListParams, { offset: -1 }))).toContain(
      'offset: expected an integer ≥ 0',
    );
    expect(
      checkParams('l', sessionsListParams, { projectId: 'p', ownerId: 'o' }),
    ).not.toHaveProperty('projectId');
  });
});

describe('entries', () => {
  it('spawnedBy and spawnDepth only at creation, only for subagent keys', () => {
    const child = newOpenClawEntry({
      key: 'agent:main:subagent:42',
      sessionId: 's',
      spawnedBy: KEY,
      spawnDepth: 1,
    });
    expect(child).toMatchObject({ spawnedBy: KEY, spawnDepth: 1, lifecycleRevision: '0' });
    expect(invalid(() => newOpenClawEntry({ key: KEY, sessionId: 's', spawnedBy: 'x' }))).toContain(
      'only supported for subagent sessions',
    );
  });

  it('reads settings.openclaw; a malformed one is INVALID_STATE', () => {
    expect(readOpenClawEntry({})).toBeUndefined();
    expect(readOpenClawEntry({ openclaw: base })).toEqual(base);
    expect(codeOf(() => readOpenClawEntry({ openclaw: { sessionId: '' } }))).toBe('INVALID_STATE');
  });

  it('property: any valid patch yields an entry the stored schema accepts', () => {
    const fields = fc.record(
      {
        label: fc.option(fc.constantFrom('A', 'B c'), { nil: null }),
        thinkingLevel: fc.option(fc.constantFrom('off', 'med', 'xhigh', 'max'), { nil: null }),
        reasoningLevel: fc.option(fc.constantFrom('off', 'on', 'stream'), { nil: null }),
        responseUsage: fc.option(fc.constantFrom('off', 'on', 'tokens', 'full'), { nil: null }),
        fastMode: fc.option(fc.constantFrom(true, false, 'auto'), { nil: null }),
        model: fc.option(fc.constantFrom('x', 'p/m'), { nil: null }),
        pinned: fc.option(fc.boolean(), { nil: null }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(fields, { maxLength: 5 }), (patches) => {
        let e = base;
        for (const f of patches) e = applyPatch(e, patch({ key: KEY, ...f }), { key: KEY });
        expect(readOpenClawEntry({ openclaw: e })).toEqual(e);
        expect(e.lifecycleRevision).toBe(String(patches.length));
      }),
    );
  });
});
