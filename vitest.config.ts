import { defineConfig } from 'vitest/config';

/** Tests that restart the local PostgreSQL server: they run alone, after the rest (`npm test`). */
export const SERIAL_TESTS = ['test/chaos/multi-node.chaos.test.ts'];

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['**/node_modules/**', ...SERIAL_TESTS],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
