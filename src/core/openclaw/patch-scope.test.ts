import { describe, expect, it } from 'vitest';

import { patchScope, patchScopeOfFields, sessionsPatchParams } from './index.ts';

describe('patchScopeOfFields (params that do not parse)', () => {
  it('a bad value of a write field needs write: the method reports the value', () => {
    expect(patchScopeOfFields({ key: 'x', label: 'x'.repeat(65) })).toBe('operator.write');
    expect(patchScopeOfFields({ key: 'x', pinned: 'yes' })).toBe('operator.write');
  });

  it('any admin field, or a permissionMode that is not a known non-full mode, needs admin', () => {
    expect(patchScopeOfFields({ key: 'x', label: 'ok', execSecurity: 'bogus' })).toBe(
      'operator.admin',
    );
    expect(patchScopeOfFields({ key: 'x', permissionMode: 'full' })).toBe('operator.admin');
    expect(patchScopeOfFields({ key: 'x', permissionMode: 'FULL ' })).toBe('operator.admin');
    expect(patchScopeOfFields({ key: 'x', permissionMode: 42 })).toBe('operator.admin');
    expect(patchScopeOfFields({ key: 'x', permissionMode: 'guarded' })).toBe('operator.write');
  });

  it('agrees with patchScope on params that do parse', () => {
    for (const params of [
      { key: 'a', label: 'l' },
      { key: 'a', execAsk: 'always' },
      { key: 'a', permissionMode: 'workspace' },
      { key: 'a', permissionMode: 'full' },
      { key: 'a', sendPolicy: 'deny' },
    ]) {
      const parsed = sessionsPatchParams.parse(params);
      expect(patchScopeOfFields(params), JSON.stringify(params)).toBe(patchScope(parsed));
    }
  });
});
