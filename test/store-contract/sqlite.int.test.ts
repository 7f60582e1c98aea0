/** The Store port contract against the embedded SQLite adapter (a fresh file per test). */
import { join } from 'node:path';

import { afterAll } from 'vitest';

import { openSqliteStore } from '../../src/store/index.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { storeContract } from './contract.ts';
import { storeEntitiesContract } from './entities.ts';

afterAll(removeTempDirs);

const open = (file?: string) => openSqliteStore({ file: file ?? join(tempDir(), 'w.db') });
storeContract('sqlite', open);
storeEntitiesContract('sqlite', open);
