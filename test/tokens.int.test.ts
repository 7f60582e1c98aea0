/** API tokens and the admin token (src/security), on a real SQLite file. */
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  hasScope,
  isWardenError,
  ManualClock,
  parseScopes,
  SYSTEM_SESSION_KEY,
  TOKEN_SCOPES,
} from '../src/core/index.ts';
import { ensureAdminToken, TokenService, verifyAdmin } from '../src/security/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { expectWardenError } from './store-contract/contract.ts';

afterAll(removeTempDirs);

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('TokenService', () => {
  let file: string;
  let store: Store;
  let clock: ManualClock;
  let tokens: TokenService;
  beforeEach(async () => {
    file = join(tempDir(), 'w.db');
    store = await openSqliteStore({ file });
    clock = new ManualClock();
    tokens = new TokenService({ store, clock });
  });
  afterEach(async () => {
    await store.close();
  });

  /** Every event of the system session, as text. */
  async function systemEventsText(): Promise<string> {
    const system = await store.getSessionByKey(SYSTEM_SESSION_KEY);
    return JSON.stringify(await store.readEvents({ sessionId: system!.id }));
  }

  it('creates wdn_<id>_<secret>; the store holds sha256(secret), never the secret', async () => {
    const created = await tokens.create({ name: 'ci', scopes: 'write,read,read' });
    expect(created.token).toMatch(/^wdn_tok_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(created.token.startsWith(`wdn_${created.id}_`)).toBe(true);
    expect(created.scopes).toEqual(['read', 'write']);
    expect(created.expires_at).toBeNull();
    const secret = created.token.slice(`wdn_${created.id}_`.length);

    await store.close();
    const db = new Database(file, { readonly: true });
    try {
      const row = db.prepare('SELECT * FROM tokens WHERE id = ?').get(created.id) as Record<
        string,
        unknown
      >;
      expect(row.secret_hash).toBe(sha256(secret));
      expect(Object.values(row).map(String).join(' ')).not.toContain(secret);
      // Nowhere in the database: not in the events either.
      const dump = db
        .prepare('SELECT body FROM event_segments')
        .all()
        .map((r) => (r as { body: string }).body)
        .join('\n');
      expect(dump).toContain('token.created');
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(sha256(secret));
    } finally {
      db.close();
    }
    store = await openSqliteStore({ file });
    tokens = new TokenService({ store, clock });
    expect(await tokens.verify(created.token)).toEqual({
      kind: 'token',
      id: created.id,
      name: 'ci',
      scopes: ['read', 'write'],
    });
  });

  it('verify rejects a wrong secret, an unknown id and malformed text with UNAUTHORIZED', async () => {
    const { token, id } = await tokens.create({ name: 'a', scopes: ['read'] });
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const wrong = await expectWardenError(tokens.verify(token.slice(0, -1) + last), 'UNAUTHORIZED');
    expect(wrong.details).toEqual({ reason: 'invalid' });
    expect(wrong.message).not.toContain(token);
    const otherId = token.replace(id, `tok_${'0'.repeat(32)}`);
    await expectWardenError(tokens.verify(otherId), 'UNAUTHORIZED');
    for (const bad of [
      '',
      'wdn_',
      token.slice(0, -1),
      `${token}x`,
      token.replace('wdn_', 'wdx_'),
      `Bearer ${token}`,
      42 as unknown as string,
    ]) {
      const error = await expectWardenError(tokens.verify(bad), 'UNAUTHORIZED');
      expect(['malformed', 'invalid']).toContain(error.details?.reason);
    }
  });

  it('a revoked token is refused; revoking twice is INVALID_STATE, an unknown id NOT_FOUND', async () => {
    const { token, id } = await tokens.create({ name: 'a', scopes: ['read'] });
    await tokens.revoke(id);
    const error = await expectWardenError(tokens.verify(token), 'UNAUTHORIZED');
    expect(error.details).toEqual({ reason: 'revoked', token_id: id });
    await expectWardenError(tokens.revoke(id), 'INVALID_STATE');
    await expectWardenError(tokens.revoke('tok_missing'), 'NOT_FOUND');
    const events = await systemEventsText();
    expect(events.match(/token\.revoked/g)).toHaveLength(1);
  });

  it('an expired token is refused from its expiry on', async () => {
    const { token } = await tokens.create({ name: 'a', scopes: ['read'], expiresInMs: 1_000 });
    clock.advance(999);
    await expect(tokens.verify(token)).resolves.toMatchObject({ name: 'a' });
    clock.advance(1);
    const error = await expectWardenError(tokens.verify(token), 'UNAUTHORIZED');
    expect(error.details).toMatchObject({ reason: 'expired' });
  });

  it('list shows every token without its hash', async () => {
    const a = await tokens.create({ name: 'a', scopes: ['admin'], expiresInMs: 60_000 });
    clock.advance(1);
    const b = await tokens.create({ name: 'b', scopes: ['approvals', 'read'] });
    await tokens.revoke(a.id);
    const list = await tokens.list();
    expect(list.map((t) => [t.id, t.name, t.scopes, t.revoked_at !== null])).toEqual([
      [a.id, 'a', ['admin'], true],
      [b.id, 'b', ['read', 'approvals'], false],
    ]);
    expect(list[0]).toMatchObject({ expires_at: a.expires_at });
    for (const t of list) expect(t).not.toHaveProperty('secret_hash');
  });

  it('create checks its input: unknown scopes are INVALID_PARAMS naming the valid ones', async () => {
    const error = await expectWardenError(
      tokens.create({ name: 'a', scopes: 'read,wrte' }),
      'INVALID_PARAMS',
    );
    expect(error.message).toContain("unknown scope 'wrte'");
    expect(error.message).toContain('read, write, admin, approvals');
    await expectWardenError(tokens.create({ name: 'a', scopes: [] }), 'INVALID_PARAMS');
    await expectWardenError(tokens.create({ name: '', scopes: 'read' }), 'INVALID_PARAMS');
    await expectWardenError(
      tokens.create({ name: 'a', scopes: 'read', expiresInMs: 0 }),
      'INVALID_PARAMS',
    );
    expect(await store.listTokens()).toEqual([]);
  });

  it('authenticate accepts the admin token (every scope) or an API token', async () => {
    const admin = 'admin-secret-from-file';
    const { token, id } = await tokens.create({ name: 'ci', scopes: ['read'] });
    expect(await tokens.authenticate(admin, admin)).toEqual({
      kind: 'admin',
      id: 'admin',
      name: 'admin',
      scopes: TOKEN_SCOPES,
    });
    expect(await tokens.authenticate(token, admin)).toMatchObject({ kind: 'token', id });
    await expectWardenError(tokens.authenticate('admin-secret-from-fil', admin), 'UNAUTHORIZED');
    await expectWardenError(tokens.authenticate('', ''), 'UNAUTHORIZED');
  });
});

describe('scopes', () => {
  it('admin implies every scope; the others imply only themselves', () => {
    for (const scope of TOKEN_SCOPES) expect(hasScope(['admin'], scope)).toBe(true);
    expect(hasScope(['read'], 'read')).toBe(true);
    expect(hasScope(['read', 'write'], 'approvals')).toBe(false);
    expect(hasScope(['approvals'], 'write')).toBe(false);
    expect(hasScope([], 'read')).toBe(false);
  });

  it('parseScopes normalises and names the valid scopes on error', () => {
    expect(parseScopes(' admin , read ')).toEqual(['read', 'admin']);
    let caught: unknown;
    try {
      parseScopes('root,read,x');
    } catch (error) {
      caught = error;
    }
    expect(isWardenError(caught, 'INVALID_PARAMS')).toBe(true);
    expect((caught as Error).message).toBe(
      "unknown scopes 'root', 'x': valid scopes are read, write, admin, approvals (comma-separated, e.g. read,write)",
    );
    expect(() => parseScopes('')).toThrow(/no scope given/);
  });
});

describe('admin token', () => {
  it('is created once with mode 0600 and read back after', () => {
    const home = join(tempDir(), 'home');
    const first = ensureAdminToken(home);
    expect(first.created).toBe(true);
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.file).toBe(join(home, 'auth.token'));
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    expect(first).toMatchObject({ mode: 0o600, insecure: false });
    expect(readFileSync(first.file, 'utf8')).toBe(`${first.token}\n`);
    const second = ensureAdminToken(home);
    expect(second).toEqual({ ...first, created: false });
  });

  it('says when group or others can read it; an empty file is CONFIG_INVALID', () => {
    const home = tempDir();
    const token = ensureAdminToken(home);
    chmodSync(token.file, 0o640);
    expect(ensureAdminToken(home)).toMatchObject({ insecure: true, mode: 0o640 });
    writeFileSync(token.file, '\n');
    let caught: unknown;
    try {
      ensureAdminToken(home);
    } catch (error) {
      caught = error;
    }
    expect(isWardenError(caught, 'CONFIG_INVALID')).toBe(true);
  });

  it('verifyAdmin compares exactly', () => {
    expect(verifyAdmin('abc', 'abc')).toBe(true);
    expect(verifyAdmin('abc', 'abd')).toBe(false);
    expect(verifyAdmin('ab', 'abc')).toBe(false);
    expect(verifyAdmin('abcd', 'abc')).toBe(false);
    expect(verifyAdmin('', '')).toBe(false);
  });
});
