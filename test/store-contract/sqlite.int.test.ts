/** The Store port contract against the embedded SQLite adapter (a fresh file per test). */
import { join } from 'node:path';

import { afterAll } from 'vitest';

import { openSqliteStore } from '../../src/store/index.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { storeContract } from './contract.ts';

afterAll(removeTempDirs);

storeContract('sqlite', (file) => openSqliteStore({ file: file ?? join(tempDir(), 'w.db') }));
