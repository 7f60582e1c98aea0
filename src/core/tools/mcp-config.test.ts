import { describe, expect, it } from 'vitest';

import { MCP_DEFAULT_TIMEOUT_MS, mcpServerListSchema, mcpServerSchema } from './mcp-config.ts';

/** The issues of a failed parse, as `path: message` lines. */
function problems(value: unknown): string[] {
  const result = mcpServerSchema.safeParse(value);
  if (result.success) return [];
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('mcpServerSchema', () => {
  it('reads a stdio server, with defaults', () => {
    expect(mcpServerSchema.parse({ name: 'files', command: 'node' })).toEqual({
      transport: 'stdio',
      name: 'files',
      command: 'node',
      args: [],
      env: {},
      timeout: MCP_DEFAULT_TIMEOUT_MS,
      startup_timeout: MCP_DEFAULT_TIMEOUT_MS,
    });
  });

  it('reads a stdio server with everything set; durations become ms', () => {
    expect(
      mcpServerSchema.parse({
        name: 'gh-tools',
        command: 'npx',
        args: ['-y', 'server'],
        env: { TOKEN: { secret: 'GH_TOKEN' }, MODE: 'ro' },
        cwd: '/srv',
        timeout: '2m',
        startup_timeout: 5000,
      }),
    ).toEqual({
      transport: 'stdio',
      name: 'gh-tools',
      command: 'npx',
      args: ['-y', 'server'],
      env: { TOKEN: { secret: 'GH_TOKEN' }, MODE: 'ro' },
      cwd: '/srv',
      timeout: 120_000,
      startup_timeout: 5000,
    });
  });

  it('reads an HTTP server with secret headers', () => {
    expect(
      mcpServerSchema.parse({
        name: 'search',
        url: 'https://mcp.example.com/mcp',
        headers: { Authorization: { secret: 'SEARCH_AUTH' }, 'X-Team': 'a' },
        timeout: '10s',
      }),
    ).toEqual({
      transport: 'http',
      name: 'search',
      url: 'https://mcp.example.com/mcp',
      headers: { Authorization: { secret: 'SEARCH_AUTH' }, 'X-Team': 'a' },
      timeout: 10_000,
    });
  });

  it('accepts an explicit transport that matches the keys', () => {
    expect(mcpServerSchema.parse({ transport: 'http', name: 'a', url: 'http://x' })).toMatchObject({
      transport: 'http',
    });
  });

  it.each([
    [
      { name: 'a' },
      [': expected `command` (a stdio server Warden starts) or `url` (a streamable HTTP server)'],
    ],
    [
      { name: 'a', command: 'x', url: 'http://x' },
      [': give either `command` (a stdio server) or `url` (a streamable HTTP server), not both'],
    ],
    [
      { name: 'A', command: 'x' },
      [
        'name: expected a server name of lower-case letters, digits, _ and - (max 32), starting with a letter',
      ],
    ],
    [
      { name: 'a'.repeat(33), command: 'x' },
      [
        'name: expected a server name of lower-case letters, digits, _ and - (max 32), starting with a letter',
      ],
    ],
    [{ name: 'a', command: '' }, ['command: expected the command that starts the server']],
    [{ name: 'a', command: 'x', comand: 'y' }, [': Unrecognized key: "comand"']],
    [{ name: 'a', url: 'ftp://x' }, ['url: expected an http:// or https:// URL']],
    [
      { name: 'a', url: 'https://u:p@x' },
      ['url: must not contain credentials: send them in `headers` with a {secret: NAME} value'],
    ],
    [
      { name: 'a', url: 'http://x', headers: { 'Bad Name': 'v' } },
      ['headers.Bad Name: expected an HTTP header name'],
    ],
    [
      { name: 'a', url: 'http://x', headers: { A: 'v\r\nB: w' } },
      ['headers.A: must not contain CR, LF or NUL'],
    ],
    [
      { name: 'a', command: 'x', env: { '1X': 'v' } },
      ['env.1X: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)'],
    ],
    [
      { name: 'a', command: 'x', env: { X: { secret: 'has space' } } },
      [
        'env.X.secret: expected a secret name of letters, digits, _ . - (max 128), starting with a letter or _',
      ],
    ],
    [
      { name: 'a', command: 'x', env: { X: { secret: 'S', extra: 1 } } },
      ['env.X: Unrecognized key: "extra"'],
    ],
    [{ name: 'a', command: 'x', timeout: 0 }, ['timeout: Too small: expected number to be >0']],
    [
      { name: 'a', command: 'x', timeout: '2h' },
      ['timeout: expected a duration above 0 and at most 3600000 ms (1h)'],
    ],
    [
      { name: 'a', command: 'x', timeout: 'soon' },
      ['timeout: expected a duration such as 500ms, 30s or 2m'],
    ],
    [{ name: 'a', url: 'http://x', startup_timeout: 5 }, [': Unrecognized key: "startup_timeout"']],
  ])('rejects %j', (value, expected) => {
    expect(problems(value)).toEqual(expected);
  });

  it('rejects values that are not objects', () => {
    expect(problems('files')).toHaveLength(1);
    expect(problems(null)).toHaveLength(1);
  });
});

describe('mcpServerListSchema', () => {
  it('rejects a server name used twice, at the second entry', () => {
    const result = mcpServerListSchema.safeParse([
      { name: 'a', command: 'x' },
      { name: 'a', url: 'http://x' },
    ]);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => [i.path, i.message])).toEqual([
      [[1, 'name'], "MCP server name 'a' is used twice; give each server its own name"],
    ]);
  });
});
