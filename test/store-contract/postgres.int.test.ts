/** The Store port contract against the PostgreSQL adapter (a fresh schema per test). */
import { afterAll } from 'vitest';

import type { PostgresStore } from '../../src/store/index.ts';
import { openPostgresStore, type Store } from '../../src/store/index.ts';
import { dropSchemas, openFreshPgStore, PG_URL, pgQuery } from '../helpers/postgres.ts';
import { storeContract } from './contract.ts';
import { storeEntitiesContract } from './entities.ts';
import { kvDeleteContract } from './kv-delete.ts';
import { securityEntitiesContract } from './security-entities.ts';

afterAll(dropSchemas);

const open = () => openFreshPgStore();
storeContract('postgres', open);
storeEntitiesContract('postgres', open);

const schemaOf = (store: Store) => (store as PostgresStore).schema;
securityEntitiesContract('postgres', open, {
  // Another pool on the same schema: another node.
  reopen: (store) => openPostgresStore({ url: PG_URL, schema: schemaOf(store), poolSize: 4 }),
  sql: async (store, text) => {
    await pgQuery(`SET search_path TO "${schemaOf(store)}"; ${text}`);
  },
  dropAuditTriggers:
    'DROP TRIGGER audit_append_only ON audit; DROP TRIGGER audit_no_truncate ON audit;',
});
kvDeleteContract('postgres', open, {
  reopen: (store) => openPostgresStore({ url: PG_URL, schema: schemaOf(store), poolSize: 4 }),
});
