/**
 * How to write a `warden` command so it works when pasted into a new shell. Every next step the
 * CLI prints goes through {@link command}: it starts with the way this CLI was started (the
 * repository's `./warden` launcher sets WARDEN_COMMAND; `warden` otherwise) and carries
 * `--home` / `--db` whenever this process used a home or database a new shell would not find by
 * default (an exported WARDEN_HOME, a flag).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

import { shellQuote } from '../core/index.ts';

let target = '';

/** Records the home and database this command works on (see {@link command}). */
export function setCommandTarget(home: string, database: string): void {
  const defaultHome = join(homedir(), '.warden');
  const parts: string[] = [];
  if (home !== defaultHome) parts.push(`--home ${shellQuote(home)}`);
  if (database !== join(home, 'warden.db')) parts.push(`--db ${shellQuote(database)}`);
  target = parts.length ? ` ${parts.join(' ')}` : '';
}

/** `warden <rest>`, written to be pasted into a new shell in the same directory. */
export function command(rest: string): string {
  return `${process.env.WARDEN_COMMAND || 'warden'}${target} ${rest}`;
}
