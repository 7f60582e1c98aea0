/**
 * `warden migrate --from sqlite:<path> --to postgres://…[?schema=name]`: moves a single-node
 * installation to PostgreSQL with its full history (the copy itself: store/migrate-copy/copy.ts).
 *
 * Everything the command line says is checked before anything is opened: `--from` is an SQLite
 * file (`sqlite:<path>` or a path; default the home's database), `--to` a postgres:// URL.
 * History must not change while it is copied, so the command refuses while a daemon serves the
 * database (DAEMON_RUNNING) and holds the home's daemon lock meanwhile, so none starts; and it
 * refuses while another process has the file open (STORE_BUSY, Linux). The SQLite file is only
 * read. The URL's password never appears in any output: URLs are printed redacted, and an
 * error whose text carries the password anyway (from the driver) has it replaced.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { coerceError, WardenError } from '../../core/index.ts';
import {
  type CopyProgress,
  type CopyReport,
  copySqliteToPostgres,
  isPostgresUrl,
  parsePgTarget,
  redactUrl,
} from '../../store/index.ts';
import { loadConfig, type ResolvedConfig } from '../config.ts';
import {
  acquireDaemonLock,
  type DaemonLock,
  daemonRunningError,
  readRunningDaemon,
} from '../daemon-file.ts';
import { processesWithOpen } from '../db-files.ts';
import { EXIT } from '../exit-codes.ts';
import type { GlobalOptions } from '../global-options.ts';
import { printJson, printLine, printTable, style } from '../output.ts';

export interface MigrateOptions extends GlobalOptions {
  readonly from?: string;
  readonly to?: string;
}

export async function migrateCommand(options: MigrateOptions): Promise<number> {
  const secret = passwordOf(options.to);
  try {
    return await migrate(options);
  } catch (error) {
    throw secret ? redactError(coerceError(error), secret) : error;
  }
}

async function migrate(options: MigrateOptions): Promise<number> {
  const to = parseTo(options.to);
  const config = loadConfig(options);
  const from = parseFrom(options.from, config);
  const lock = guardSource(from, config);
  try {
    const report = await copySqliteToPostgres({
      from,
      to,
      onProgress: (p) => process.stderr.write(`${progressLine(p)}\n`),
    });
    if (options.json) printJson(report);
    else printReport(report);
    return EXIT.OK;
  } finally {
    lock?.release();
  }
}

/** `--to`: a postgres:// or postgresql:// URL with a valid schema (CONFIG_INVALID otherwise). */
function parseTo(value: string | undefined): string {
  if (!value)
    throw new WardenError(
      'INVALID_PARAMS',
      '--to is required: the PostgreSQL database to copy into, as postgres://user@host:5432/database[?schema=name]',
    );
  if (!isPostgresUrl(value))
    throw new WardenError(
      'INVALID_PARAMS',
      `--to must be a postgres:// or postgresql:// URL, got '${redactUrl(value)}'`,
      { details: { to: redactUrl(value) } },
    );
  parsePgTarget(value); // the whole URL and its schema, before anything is opened
  return value;
}

/**
 * `--from`: `sqlite:<path>` or a plain path, relative to the current directory; without it, the
 * home's database. Returns the absolute path of an existing file.
 */
function parseFrom(value: string | undefined, config: ResolvedConfig): string {
  let file: string;
  if (value === undefined) {
    if (config.storeUrl)
      throw new WardenError(
        'INVALID_PARAMS',
        `this home's store is already PostgreSQL (${redactUrl(config.storeUrl)}); name the SQLite database to copy with --from sqlite:<path>`,
      );
    file = config.databasePath;
  } else {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1];
    if (scheme && scheme.toLowerCase() !== 'sqlite' && value.includes('://'))
      throw new WardenError(
        'INVALID_PARAMS',
        `--from takes the SQLite database to copy, as sqlite:<path> or a path; got '${redactUrl(value)}'`,
        { details: { from: redactUrl(value) } },
      );
    const path = scheme?.toLowerCase() === 'sqlite' ? value.slice('sqlite:'.length) : value;
    // sqlite:///abs/path names /abs/path, as in the usual URL form.
    const plain = path.startsWith('///') ? path.slice(2) : path;
    if (plain === '')
      throw new WardenError('INVALID_PARAMS', '--from sqlite: needs a path: sqlite:<path>');
    file = resolve(plain);
  }
  if (!existsSync(file))
    throw new WardenError('NOT_FOUND', `no SQLite database at ${file}; check --from`, {
      details: { file },
    });
  if (statSync(file).isDirectory())
    throw new WardenError('INVALID_PARAMS', `${file} is a directory; name the database file`, {
      details: { file },
    });
  return realpathSync(file);
}

/**
 * Refuses while a daemon serves `file` (its home's daemon.json: this home, or the file's own
 * directory when that is a home), then takes that home's daemon lock so none starts during the
 * copy; refuses while another process has the file open.
 */
function guardSource(file: string, config: ResolvedConfig): DaemonLock | null {
  const ownHome = sameFile(config.databasePath, file) ? config.home : null;
  const dirHome = existsSync(join(dirname(file), 'config.yaml')) ? dirname(file) : null;
  const homes = [...new Set([config.home, dirname(file)])];
  for (const home of homes) {
    const daemon = readRunningDaemon(home);
    if (daemon && sameFile(daemon.database, file))
      throw daemonRunningError(
        daemon,
        'migrating its database (its history must not change during the copy)',
      );
  }
  const lockHome = ownHome ?? dirHome;
  const lock = lockHome ? acquireDaemonLock(lockHome, 'migrate') : null;
  try {
    const pids = processesWithOpen([file, `${file}-wal`]);
    if (pids.length > 0)
      throw new WardenError(
        'STORE_BUSY',
        `${file} is open in ${pids.length === 1 ? 'process' : 'processes'} ${pids.join(', ')}; stop them (warden run, watch, events --follow, your programs) so its history cannot change, then migrate again. Nothing was changed.`,
        { details: { file, pids } },
      );
    return lock;
  } catch (error) {
    lock?.release();
    throw error;
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');

function progressLine(p: CopyProgress): string {
  switch (p.phase) {
    case 'source':
      return `migrate: reading the SQLite database (schema v${p.schemaVersion}, ${fmt(p.rows)} rows)`;
    case 'target':
      return `migrate: PostgreSQL schema '${p.schema}' ready (schema v${p.schemaVersion}); copying in one transaction`;
    case 'copy':
      return `migrate: ${p.table} ${fmt(p.rows)}/${fmt(p.total)}`;
    case 'verify':
      return `migrate: verifying hash chains ${fmt(p.events)}/${fmt(p.total)} events`;
    default: {
      const never: never = p;
      return String(never);
    }
  }
}

function printReport(report: CopyReport): void {
  printLine(
    `${style.green('✓')} migrated ${report.source} to ${report.target} (schema '${report.schema}')`,
  );
  printTable(
    ['TABLE', 'SQLITE', 'POSTGRES'],
    report.tables.map((t) => [t.table, fmt(t.sqlite), fmt(t.postgres)]),
  );
  printLine(
    `${style.green('ledger ok')}: ${fmt(report.events)} events in ${fmt(report.sessions)} sessions verified on PostgreSQL`,
  );
  printLine(
    `next: set ${style.bold(`store: ${report.target}`)} in config.yaml (or WARDEN_STORE) with the URL's password; the SQLite database was left as it was`,
  );
}

/** The password of a URL (as written and decoded), or null. */
function passwordOf(value: string | undefined): string[] | null {
  if (!value) return null;
  try {
    const password = new URL(value).password;
    if (!password) return null;
    return [...new Set([password, decodeURIComponent(password)])];
  } catch {
    return null;
  }
}

/** The same error with every occurrence of the password replaced by `***`. */
function redactError(error: WardenError, secrets: readonly string[]): WardenError {
  const scrub = (text: string) => secrets.reduce((t, s) => t.split(s).join('***'), text);
  const details = error.details
    ? (JSON.parse(scrub(JSON.stringify(error.details))) as Record<string, unknown>)
    : undefined;
  return new WardenError(error.code, scrub(error.message), {
    retryable: error.retryable,
    ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    ...(details ? { details } : {}),
  });
}
