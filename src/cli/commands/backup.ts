/**
 * `warden backup <file>` and `warden restore <file>`.
 *
 * backup: copies the database as of one instant while other processes keep writing
 * (copySqliteDatabase: VACUUM INTO, see store/sqlite/backup.ts for why) to a temp file beside
 * `<file>`, verifies the copy (integrity check, schema, ledger), flushes it, and only then
 * moves it to `<file>`: a `<file>` that exists is always a whole, verified backup.
 *
 * restore: refuses while a daemon runs on the home (DAEMON_RUNNING) and holds the daemon lock
 * meanwhile, so none can start; refuses while another process has the database open (Linux,
 * db-files.ts). It copies and verifies the source the same way (a newer schema: STORE_TOO_NEW;
 * an older one is migrated in the copy, never in the source), sets the current database aside as
 * `<db>.before-restore-<UTC time>` with its `-wal`, and renames the copy into place.
 *
 * The one race left: a process that opens the database between the open-files check and the
 * rename keeps working on the database set aside (its open files moved with it), and could
 * delete the new `-wal` by name when it closes. Stop `warden run` and your programs first; the
 * check catches the ones already running.
 */
import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import { WardenError } from '../../core/index.ts';
import { verifyLedger } from '../../kernel/index.ts';
import {
  checkSqliteFile,
  copySqliteDatabase,
  openSqliteStore,
  redactUrl,
  SQLITE_SCHEMA_VERSION,
} from '../../store/index.ts';
import { loadConfig } from '../config.ts';
import { acquireDaemonLock, daemonRunningError, readRunningDaemon } from '../daemon-file.ts';
import {
  existsError,
  fsyncPath,
  moveDatabaseAside,
  placeFile,
  processesWithOpen,
} from '../db-files.ts';
import { EXIT } from '../exit-codes.ts';
import type { GlobalOptions } from '../global-options.ts';
import { command } from '../invocation.ts';
import { printJson, printLine, style } from '../output.ts';
import { count } from '../render.ts';

/** What a verified copy holds. `ledger_ok` is null when the ledger could not be checked. */
export interface CopySummary {
  readonly bytes: number;
  readonly schema_version: number;
  readonly integrity: string;
  readonly sessions: number | null;
  readonly events: number | null;
  readonly ledger_ok: boolean | null;
  /** Why the ledger was not checked (a schema older than this Warden's, left as it is). */
  readonly ledger_skipped?: string;
}

export async function backupCommand(
  file: string,
  options: GlobalOptions & { force?: boolean },
): Promise<number> {
  const config = loadConfig(options);
  refusePostgres(config.storeUrl, 'backup');
  const source = config.databasePath;
  const dest = resolve(file);
  checkDestination(dest, source, options.force ?? false);
  if (!existsSync(source))
    throw new WardenError(
      'NOT_FOUND',
      `no Warden database at ${source} to back up; check --home, --db or WARDEN_DB`,
      { details: { file: source } },
    );
  const temp = tempBeside(dest, 'backup');
  try {
    const started = Date.now();
    copySqliteDatabase(source, temp);
    chmodSync(temp, 0o600); // the event log holds every run's input: only its owner reads it
    // A copy of an older schema is kept as it is (it is a backup): its ledger needs the store,
    // which would migrate it, so it is not checked.
    const summary = await verifyCopy(temp, { migrate: false });
    fsyncPath(temp);
    placeFile(temp, dest, options.force ?? false);
    const result = { file: dest, source, ...summary, elapsed_ms: Date.now() - started };
    if (options.json) printJson(result);
    else {
      printLine(`${style.green('✓')} backup ${dest}`);
      printSummary(summary);
      printLine(`  restore it with: ${style.bold(command(`restore ${dest}`))}`);
    }
    return summary.ledger_ok === false ? EXIT.LEDGER_BROKEN : EXIT.OK;
  } finally {
    removeDatabaseFiles(temp);
  }
}

export async function restoreCommand(file: string, options: GlobalOptions): Promise<number> {
  const config = loadConfig(options);
  refusePostgres(config.storeUrl, 'restore');
  const target = config.databasePath;
  const source = resolve(file);
  checkSource(source, target);
  const daemon = readRunningDaemon(config.home);
  if (daemon) throw daemonRunningError(daemon, 'restoring: the daemon has the database open');
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  mkdirSync(config.home, { recursive: true, mode: 0o700 });
  const lock = acquireDaemonLock(config.home, 'restore');
  const temp = tempBeside(target, 'restore');
  try {
    refuseOpenDatabase(target);
    const started = Date.now();
    copySqliteDatabase(source, temp);
    chmodSync(temp, 0o600);
    const summary = await verifyCopy(temp, { migrate: true });
    if (summary.ledger_ok === false)
      throw new WardenError(
        'LEDGER_BROKEN',
        `${source}: the event log fails verification; nothing was restored (run ${command('ledger verify')} with --db ${source} for the first broken link)`,
        { details: { file: source } },
      );
    fsyncPath(temp);
    refuseOpenDatabase(target); // again, right before the swap (see the module comment)
    const kept = moveDatabaseAside(target, asideName(target));
    placeFile(temp, target, true);
    const result = { file: target, source, kept, ...summary, elapsed_ms: Date.now() - started };
    if (options.json) printJson(result);
    else {
      printLine(`${style.green('✓')} restored ${target} from ${source}`);
      printSummary(summary);
      for (const f of kept) printLine(`  kept the previous database as ${f}`);
    }
    return EXIT.OK;
  } finally {
    removeDatabaseFiles(temp);
    lock.release();
  }
}

/**
 * Integrity and schema of the copy, then its ledger through the store. `migrate`: open it as a
 * store even when its schema is older (the store migrates it); otherwise skip the ledger then.
 */
async function verifyCopy(file: string, options: { migrate: boolean }): Promise<CopySummary> {
  const check = checkSqliteFile(file);
  if (check.integrity !== 'ok')
    throw new WardenError(
      'STORE_CORRUPT',
      `the copy failed PRAGMA integrity_check: ${check.integrity}; the database is damaged (run ${command('doctor')})`,
      { details: { integrity: check.integrity } },
    );
  if (check.schemaVersion < SQLITE_SCHEMA_VERSION && !options.migrate)
    return {
      bytes: statSync(file).size,
      schema_version: check.schemaVersion,
      integrity: check.integrity,
      sessions: null,
      events: null,
      ledger_ok: null,
      ledger_skipped: `schema version ${check.schemaVersion} is older than this Warden's (${SQLITE_SCHEMA_VERSION}); the copy is kept unmigrated`,
    };
  const store = await openSqliteStore({ file, mustExist: true });
  let ledger;
  try {
    ledger = await verifyLedger(store);
  } finally {
    await store.close();
  }
  return {
    bytes: statSync(file).size,
    schema_version: store.schemaVersion,
    integrity: check.integrity,
    sessions: ledger.sessions.length,
    events: ledger.events,
    ledger_ok: ledger.ok,
  };
}

function printSummary(s: CopySummary): void {
  printLine(`  ${formatBytes(s.bytes)}, schema v${s.schema_version}, integrity ${s.integrity}`);
  if (s.ledger_ok === null) printLine(style.yellow(`  ledger not checked: ${s.ledger_skipped}`));
  else
    printLine(
      s.ledger_ok
        ? `  ${style.green('ledger ok')}: ${count(s.events ?? 0, 'event')} in ${count(s.sessions ?? 0, 'session')}`
        : style.red('  ledger BROKEN: the event log was altered or damaged'),
    );
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1_048_576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1_048_576).toFixed(1)} MiB`;
}

function checkDestination(dest: string, source: string, force: boolean): void {
  if (dest === source || ['-wal', '-shm', '-journal'].some((s) => dest === `${source}${s}`))
    throw new WardenError(
      'INVALID_PARAMS',
      `${dest} is the database itself (or one of its files); back up to another file`,
      { details: { file: dest } },
    );
  if (!existsSync(dirname(dest)))
    throw new WardenError(
      'NOT_FOUND',
      `directory ${dirname(dest)} does not exist; create it first`,
      {
        details: { file: dest },
      },
    );
  if (existsSync(dest)) {
    if (statSync(dest).isDirectory())
      throw new WardenError('INVALID_PARAMS', `${dest} is a directory; name a file in it`, {
        details: { file: dest },
      });
    if (!force) throw existsError(dest);
  }
}

function checkSource(source: string, target: string): void {
  if (!existsSync(source))
    throw new WardenError('NOT_FOUND', `no backup file at ${source}`, {
      details: { file: source },
    });
  if (statSync(source).isDirectory())
    throw new WardenError('INVALID_PARAMS', `${source} is a directory; name a backup file`, {
      details: { file: source },
    });
  if (source === target)
    throw new WardenError(
      'INVALID_PARAMS',
      `${source} is the database itself; name a backup file made by ${command('backup <file>')}`,
      { details: { file: source } },
    );
}

function refuseOpenDatabase(target: string): void {
  const pids = processesWithOpen([target, `${target}-wal`]);
  if (pids.length > 0)
    throw new WardenError(
      'STORE_BUSY',
      `${target} is open in ${pids.length === 1 ? 'process' : 'processes'} ${pids.join(', ')}; stop them (warden run, watch, events --follow, your programs) and restore again`,
      { details: { file: target, pids } },
    );
}

/** A temp name in the destination's directory, so the final rename stays on one file system. */
function tempBeside(file: string, what: string): string {
  return join(dirname(file), `.${basename(file)}.${what}-${process.pid}.tmp`);
}

/** `<db>.before-restore-20261203T205739Z`, with `.1`, `.2`… when that exists. */
function asideName(target: string): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const base = `${target}.before-restore-${stamp}`;
  let name = base;
  for (let i = 1; existsSync(name) || existsSync(`${name}-wal`); i++) name = `${base}.${i}`;
  return name;
}

function removeDatabaseFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal'])
    rmSync(`${file}${suffix}`, { force: true });
}

/** `backup` and `restore` copy the SQLite file; PostgreSQL has its own tools for that. */
function refusePostgres(storeUrl: string | null, what: 'backup' | 'restore'): void {
  if (!storeUrl) return;
  throw new WardenError(
    'INVALID_PARAMS',
    `warden ${what} copies the embedded SQLite database; this home's store is PostgreSQL (${redactUrl(storeUrl)}): use pg_dump / pg_restore (or your provider's backups) on its schema instead (docs/scale-out.md)`,
    { details: { store: redactUrl(storeUrl) } },
  );
}
