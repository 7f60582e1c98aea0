#!/usr/bin/env node
/**
 * The `warden` executable. It checks the Node.js version first and only then loads the CLI
 * (and with it the native SQLite driver), so an old runtime gets a message saying what to do
 * instead of a crash.
 */
import { EXIT } from './exit-codes.ts';
import { nodeVersionProblem } from './node-version.ts';

const problem = nodeVersionProblem(process.versions.node);
if (problem) {
  process.stderr.write(problem);
  process.exitCode = EXIT.ERROR;
} else {
  await import('./main.ts');
}
