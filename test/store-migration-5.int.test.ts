/**
 * Migration 5 (`tokens_sessions`) on a database written by schema version 4: sessions gain a
 * settings version (0 for every existing one), the tokens table appears, and an old session
 * can be patched and deleted.
 */
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import { GENESIS_HASH } from '../src/core/index.ts';
import { openSqliteStore, SQLITE_SCHEMA_VERSION } from '../src/store/index.ts';
import { SQLITE_MIGRATIONS } from '../src/store/migrations/sqlite.ts';
import { migrate } from '../src/store/sqlite/migrate.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { tokenRow } from './store-contract/entities.ts';

afterAll(removeTempDirs);

const NOW = 1_790_000_000_000;

/** A version-4 database with two sessions (one `system`) and a finished task. */
function buildVersion4(file: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  expect(migrate(db, SQLITE_MIGRATIONS.slice(0, 4), file, NOW)).toBe(4);
  const insertSession = db.prepare(
    `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
     VALUES (?, ?, ?, ?, ?, 0, ?)`,
  );
  insertSession.run('s_sys', 'system', '{}', NOW, NOW, GENESIS_HASH);
  insertSession.run('s_old', 'agent:old', '{"model":"m1"}', NOW, NOW, GENESIS_HASH);
  db.prepare(
    `INSERT INTO task_data (n, id, name, session_id, process_id, payload, priority, max_attempts,
       idempotency_key, last_error, result, trace_id, options, created_at)
     VALUES (1, 't_old', 'noop', 's_old', NULL, '{}', 2, 3, NULL, NULL, NULL, 'tr', '{}', ?)`,
  ).run(NOW);
  db.prepare(
    `INSERT INTO task_state (n, kind, lane, state, sort_key, available_at, attempts, lease_owner,
       lease_token, lease_expires_at, claimed_at, updated_at)
     VALUES (1, 'job', 'default', 'succeeded', ?, ?, 1, NULL, NULL, NULL, NULL, ?)`,
  ).run(NOW, NOW, NOW);
  db.close();
}

describe('migration 5 (tokens_sessions) on a version-4 database', () => {
  it('migrates forward; old sessions are version 0 and can be patched and deleted', async () => {
    const file = join(tempDir(), 'w.db');
    buildVersion4(file);
    const store = await openSqliteStore({ file });
    try {
      // Migrated through 5 to the latest version.
      expect((await store.health()).schemaVersion).toBe(SQLITE_SCHEMA_VERSION);
      const old = await store.getSession('s_old');
      expect(old).toMatchObject({ key: 'agent:old', settings: { model: 'm1' } });
      expect(old?.version ?? 0).toBe(0);

      await store.commit([
        {
          op: 'session.update',
          id: 's_old',
          settings: { model: 'm2' },
          expectVersion: 0,
          now: NOW,
        },
      ]);
      expect(await store.getSession('s_old')).toMatchObject({
        settings: { model: 'm2' },
        version: 1,
      });

      const token = tokenRow();
      await store.commit([{ op: 'token.insert', row: token }]);
      expect(await store.listTokens()).toEqual([token]);

      const counts = await store.deleteSession({
        id: 's_old',
        event: { session_id: 's_sys', trace_id: 'tr_del' },
      });
      expect(counts).toMatchObject({ tasks: 1, events: 0 });
      expect(await store.getTask('t_old')).toBeUndefined();
    } finally {
      await store.close();
    }
    const db = new Database(file, { readonly: true });
    try {
      const applied = db
        .prepare('SELECT version, name FROM schema_migrations ORDER BY version')
        .all();
      expect(applied).toContainEqual({ version: 5, name: 'tokens_sessions' });
      expect(applied.at(-1)).toMatchObject({ version: SQLITE_SCHEMA_VERSION });
    } finally {
      db.close();
    }
  });
});
