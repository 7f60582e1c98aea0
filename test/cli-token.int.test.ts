/** `warden token create|list|revoke`, through the real CLI in a child process. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { TokenService } from '../src/security/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { json, runCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

interface Created {
  id: string;
  token: string;
  scopes: string[];
  expires_at: number | null;
}

describe('warden token', () => {
  it('create prints the token once; list shows it without secrets; revoke refuses it after', async () => {
    const home = tempDir();
    const created = await runCli(
      ['--json', 'token', 'create', '--name', 'ci', '--scopes', 'write,read', '--expires', '30d'],
      { home },
    );
    expect(created.code).toBe(0);
    const out = json<Created>(created);
    expect(Object.keys(out).sort()).toEqual(['expires_at', 'id', 'scopes', 'token']);
    expect(out.token).toMatch(new RegExp(`^wdn_${out.id}_[A-Za-z0-9_-]{43}$`));
    expect(out.scopes).toEqual(['read', 'write']);

    const human = await runCli(['token', 'create', '--name', 'ops', '--scopes', 'admin'], { home });
    expect(human.code).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(/^✓ token tok_[0-9a-f]{32} 'ops' \(admin\), never expires$/);
    expect(lines[1]).toMatch(/^wdn_tok_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    const opsToken = lines[1]!;

    const list = await runCli(['--json', 'token', 'list'], { home });
    expect(list.code).toBe(0);
    const tokens = json<Array<Record<string, unknown>>>(list);
    expect(tokens.map((t) => [t.name, t.scopes, t.status])).toEqual([
      ['ci', ['read', 'write'], 'active'],
      ['ops', ['admin'], 'active'],
    ]);
    expect((tokens[0]!.expires_at as number) - (tokens[0]!.created_at as number)).toBe(
      30 * 86_400_000,
    );
    for (const t of tokens) expect(t).not.toHaveProperty('secret_hash');
    const table = await runCli(['token', 'list'], { home });
    expect(table.stdout).toContain(out.id);
    for (const text of [list.stdout, table.stdout]) {
      expect(text).not.toContain(out.token.slice(-43));
      expect(text).not.toContain(opsToken.slice(-43));
    }

    // The printed tokens work until revoked.
    const check = async (token: string) => {
      const store = await openSqliteStore({ file: join(home, 'warden.db') });
      try {
        return await new TokenService({ store }).verify(token);
      } finally {
        await store.close();
      }
    };
    await expect(check(out.token)).resolves.toMatchObject({
      id: out.id,
      scopes: ['read', 'write'],
    });
    await expect(check(opsToken)).resolves.toMatchObject({ name: 'ops' });

    const revoked = await runCli(['token', 'revoke', out.id], { home });
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`✓ token ${out.id} revoked\n`);
    await expect(check(out.token)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const listed = json<Array<Record<string, unknown>>>(
      await runCli(['--json', 'token', 'list'], { home }),
    );
    expect(listed.map((t) => t.status)).toEqual(['revoked', 'active']);

    const again = await runCli(['token', 'revoke', out.id], { home });
    expect(again.code).toBe(8);
    expect(again.stderr).toContain('[INVALID_STATE]');
    const unknown = await runCli(['token', 'revoke', 'tok_missing'], { home });
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toContain('[NOT_FOUND]');
  });

  it('bad scopes and durations are usage errors that create nothing', async () => {
    const home = tempDir();
    const scopes = await runCli(['token', 'create', '--name', 'x', '--scopes', 'read,root'], {
      home,
    });
    expect(scopes.code).toBe(2);
    expect(scopes.stderr).toContain(
      "[INVALID_PARAMS] unknown scope 'root': valid scopes are read, write, admin, approvals",
    );
    const expiry = await runCli(
      ['token', 'create', '--name', 'x', '--scopes', 'read', '--expires', 'soon'],
      { home },
    );
    expect(expiry.code).toBe(2);
    expect(expiry.stderr).toContain('--expires: expected a duration such as 30d');
    const missing = await runCli(['token', 'create', '--name', 'x'], { home });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--scopes');
    expect(existsSync(join(home, 'warden.db'))).toBe(false);
    const list = await runCli(['token', 'list'], { home });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('no API tokens');
  });
});
