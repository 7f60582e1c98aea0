/**
 * The `warden` command. Every command validates its input before touching the database,
 * prints human-readable output (or JSON with --json), and exits with a documented code.
 */
import { CommanderError } from 'commander';

import { coerceError } from '../core/index.ts';
import { EXIT } from './exit-codes.ts';
import { printError } from './output.ts';
import { buildProgram } from './program.ts';

// `warden events | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

async function main(): Promise<void> {
  let code: number = EXIT.OK;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      code = error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    } else {
      printError(coerceError(error), process.argv.includes('--json'));
      code = EXIT.ERROR;
    }
  }
  process.exitCode = code;
}

await main();
