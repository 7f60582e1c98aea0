import { defineConfig } from 'vitest/config';

import { SERIAL_TESTS } from './vitest.config.ts';

/** The tests that restart PostgreSQL, one at a time, with nothing else running beside them. */
export default defineConfig({
  test: {
    include: SERIAL_TESTS,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
