// Type-aware lint. Layering (docs/architecture.md#layers): core ← store ← queue ← kernel ←
// runtime ← security ← plans ← protocols ← daemon ← cli (and core ← client ← cli). Nothing imports
// upward; `core` does no I/O.
import importX from 'eslint-plugin-import-x';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import tseslint from 'typescript-eslint';

const layer = (from, forbidden, message) => ({
  files: [`src/${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((area) => ({
          group: [`**/${area}/**`, `**/${area}/*`, `../${area}`, `../../${area}`],
          message,
        })),
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'dist-check/**', 'coverage/**', 'bench/**', 'node_modules/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX, 'simple-import-sort': simpleImportSort },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      'import-x/no-cycle': 'error',
    },
  },
  layer(
    'core',
    ['store', 'kernel', 'queue', 'runtime', 'security', 'plans', 'protocols', 'cli'],
    'core is pure: it imports nothing above it',
  ),
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            'node:fs',
            'node:fs/promises',
            'node:net',
            'node:http',
            'node:child_process',
            'node:timers',
            'better-sqlite3',
            'pg',
          ].map((name) => ({
            name,
            message: 'core does no I/O (docs/architecture.md#layers)',
          })),
          patterns: [
            {
              group: [
                '**/store/**',
                '**/kernel/**',
                '**/queue/**',
                '**/runtime/**',
                '**/security/**',
                '**/protocols/**',
                '**/cli/**',
              ],
              message: 'core imports nothing above it',
            },
          ],
        },
      ],
    },
  },
  layer(
    'store',
    ['kernel', 'queue', 'runtime', 'security', 'plans', 'protocols', 'daemon', 'client', 'cli'],
    'store imports only core',
  ),
  layer(
    'kernel',
    ['runtime', 'security', 'plans', 'protocols', 'daemon', 'client', 'cli'],
    'kernel imports only core, store and queue',
  ),
  layer(
    'queue',
    ['kernel', 'runtime', 'security', 'plans', 'protocols', 'daemon', 'client', 'cli'],
    'queue imports only core and store',
  ),
  layer(
    'runtime',
    ['security', 'plans', 'protocols', 'daemon', 'client', 'cli'],
    'runtime must not import security, protocols, daemon, client or cli',
  ),
  layer(
    'security',
    ['plans', 'protocols', 'daemon', 'client', 'cli'],
    'security imports only core, store, queue, kernel and runtime',
  ),
  // `warden plan`/`exec` (the NOA kit): built on the queue, kernel, runtime and security.
  layer(
    'plans',
    ['protocols', 'daemon', 'client', 'cli'],
    'plans imports only core, store, queue, kernel, runtime and security',
  ),
  layer(
    'protocols',
    ['daemon', 'client', 'cli'],
    'protocols must not import daemon, client or cli',
  ),
  layer('daemon', ['cli', 'client'], 'daemon must not import cli or client'),
  // The client runs in programs with no database: it imports only core (and ws).
  layer(
    'client',
    ['store', 'kernel', 'queue', 'runtime', 'security', 'protocols', 'cli', 'daemon', 'testing'],
    'client imports only core (docs/client.md)',
  ),
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Examples are what users copy: agents written `async` without an await are fine there.
    files: ['examples/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['eslint.config.js', 'examples/**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The CommonJS example shows require() of the package on purpose.
    files: ['examples/**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
