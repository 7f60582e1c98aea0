import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { API_TOOL_NAME, readableName, requestToolNames, ToolNameMap } from './tool-names.ts';

/** Names like Warden's: dotted segments of letters, digits, `_` and `-`, sometimes very long. */
const wardenName = fc
  .array(fc.stringMatching(/^[a-zA-Z0-9_-]{1,30}$/), { minLength: 1, maxLength: 5 })
  .map((segments) => segments.join('.'));

/** Short names over a tiny alphabet, where `.` → `__` collisions are likely. */
const collidingName = fc.stringMatching(/^[a._]{1,6}$/);

/** Anything at all, including names no API accepts (spaces, unicode, empty). */
const anyName = fc.oneof(wardenName, collidingName, fc.string({ maxLength: 100 }), fc.constant(''));

describe('ToolNameMap', () => {
  it('maps any set of names to distinct API-valid names and back', () => {
    fc.assert(
      fc.property(fc.uniqueArray(anyName, { maxLength: 20 }), (names) => {
        const map = new ToolNameMap(names);
        const apiNames = names.map((n) => map.toApi(n));
        for (const [i, apiName] of apiNames.entries()) {
          expect(apiName).toMatch(API_TOOL_NAME);
          expect(map.fromApi(apiName)).toBe(names[i]);
        }
        expect(new Set(apiNames).size).toBe(names.length);
      }),
      { numRuns: 500 },
    );
  });

  it('stays reversible when names are built to collide (a.b beside a__b, long shared prefixes)', () => {
    const prefix = 'mcp.some_server.'.padEnd(70, 'x');
    const names = ['a.b', 'a__b', 'a_.b', 'a._b', `${prefix}.one`, `${prefix}.two`, 'a___b'];
    fc.assert(
      fc.property(fc.shuffledSubarray(names, { minLength: 1 }), (subset) => {
        const map = new ToolNameMap(subset);
        const apiNames = subset.map((n) => map.toApi(n));
        expect(new Set(apiNames).size).toBe(subset.length);
        for (const [i, apiName] of apiNames.entries()) {
          expect(apiName).toMatch(API_TOOL_NAME);
          expect(map.fromApi(apiName)).toBe(subset[i]);
        }
      }),
    );
  });

  it('gives plain dotted names a readable form that does not depend on the other names', () => {
    fc.assert(
      fc.property(fc.uniqueArray(anyName, { maxLength: 10 }), (others) => {
        const map = new ToolNameMap([...others, 'http.fetch', 'mcp.files.read_file']);
        expect(map.toApi('http.fetch')).toBe('http__fetch');
        expect(map.toApi('mcp.files.read_file')).toBe('mcp__files__read_file');
      }),
    );
  });

  it('hashes names that are ambiguous, too long or have other characters', () => {
    const long = `mcp.${'very_long_server_name'.repeat(3)}.tool`;
    const map = new ToolNameMap(['a__b', long, 'has space', '']);
    expect(map.toApi('a__b')).toMatch(/^a__b_[0-9a-f]{8}$/);
    expect(map.toApi(long)).toHaveLength(64);
    expect(map.toApi(long)).toMatch(/^mcp__very_long_server_name.*_[0-9a-f]{8}$/);
    expect(map.toApi('has space')).toMatch(/^has_space_[0-9a-f]{8}$/);
    expect(map.toApi('')).toMatch(API_TOOL_NAME);
    expect(readableName('a.b-c_d')).toBe('a__b-c_d');
    expect(readableName('a._b')).toBeUndefined();
  });

  it('does not decode names that no tool of the request has', () => {
    const map = new ToolNameMap(['http.fetch']);
    expect(map.fromApi('http__fetch')).toBe('http.fetch');
    expect(map.fromApi('fs__read')).toBeUndefined();
    expect(map.fromApi('http.fetch')).toBeUndefined();
  });

  it('collects names from tools, assistant tool calls and tool messages', () => {
    expect(
      requestToolNames({
        tools: [{ name: 'http.fetch' }],
        messages: [
          { role: 'user' },
          { role: 'assistant', tool_calls: [{ name: 'fs.read' }] },
          { role: 'tool', name: 'kv.get' },
        ],
      }),
    ).toEqual(['http.fetch', 'fs.read', 'kv.get']);
  });
});
