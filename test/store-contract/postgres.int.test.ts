/** The Store port contract against the PostgreSQL adapter (a fresh schema per test). */
import { afterAll } from 'vitest';

import { dropSchemas, openFreshPgStore } from '../helpers/postgres.ts';
import { storeContract } from './contract.ts';
import { storeEntitiesContract } from './entities.ts';

afterAll(dropSchemas);

const open = () => openFreshPgStore();
storeContract('postgres', open);
storeEntitiesContract('postgres', open);
