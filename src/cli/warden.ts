#!/usr/bin/env node
/**
 * The `warden` executable. It checks the Node.js version first and only then loads the CLI
 * (and with it the native SQLite driver), so an old runtime gets a message saying what to do
 * instead of a crash.
 */
import module from 'node:module';

import { EXIT } from './exit-codes.ts';
import { nodeVersionProblem } from './node-version.ts';

// V8's compiled code is cached on disk (Node ≥ 22.1; a no-op where unsupported): after the first
// run, starting `warden` (and `warden serve`) skips most parsing and compiling.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(problem);
  process.exitCode = EXIT.ERROR;
} else {
  await import('./main.ts');
}
