/** The Store port contract against the embedded SQLite adapter (a fresh file per test). */
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll } from 'vitest';

import { openSqliteStore, type Store } from '../../src/store/index.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { storeContract } from './contract.ts';
import { storeEntitiesContract } from './entities.ts';
import { kvDeleteContract } from './kv-delete.ts';
import { securityEntitiesContract } from './security-entities.ts';

afterAll(removeTempDirs);

const open = (file?: string) => openSqliteStore({ file: file ?? join(tempDir(), 'w.db') });
storeContract('sqlite', open);
storeEntitiesContract('sqlite', open);

const fileOf = (store: Store) => store.location!.file;
securityEntitiesContract('sqlite', () => open(), {
  // Another connection to the same file, as another process would have.
  reopen: (store) => open(fileOf(store)),
  sql: async (store, text) => {
    const db = new Database(fileOf(store));
    try {
      db.exec(text);
    } finally {
      db.close();
    }
    return Promise.resolve();
  },
  dropAuditTriggers: 'DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;',
});
kvDeleteContract('sqlite', () => open(), { reopen: (store) => open(fileOf(store)) });
