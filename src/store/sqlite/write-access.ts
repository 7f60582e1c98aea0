/**
 * Whether this process can write a SQLite database, and if not, why and how to make it
 * writable (STORE_READ_ONLY). A WAL database is written through three files: the database
 * itself and, next to it, `<file>-wal` and `<file>-shm`, which SQLite creates when they are
 * missing; so the directory must be writable too, unless both already exist and are writable.
 *
 * The answer comes from access(2), asked before SQLite touches the file. Root passes every
 * permission check, and a read-only file system fails it with EROFS, so the answer is the
 * kernel's. Asking first matters: a connection that opens a read-only WAL database in a
 * writable directory creates `-wal` and `-shm` with the database's mode (0444) and leaves them
 * behind, and those keep the database unwritable after its own mode is fixed.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { shellQuote, WardenError } from '../../core/index.ts';

export interface WriteAccessProblem {
  /** What cannot be written, e.g. "/h/warden.db is read-only for this user". */
  readonly reason: string;
  /** How to make it writable: a command, or what to ask of the owner. */
  readonly fix: string;
  /** The paths this process cannot write. */
  readonly paths: readonly string[];
}

/** The errno code access(2) gives for writing `path` (null: writable). */
function denied(path: string): string | null {
  try {
    accessSync(path, constants.W_OK);
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? 'EACCES';
  }
}

/** Null when this process can write the database `file` (which may not exist yet). */
export function writeAccessProblem(file: string): WriteAccessProblem | null {
  const dir = dirname(file);
  const sidecars = [`${file}-wal`, `${file}-shm`];
  const blocked: Array<{ path: string; code: string; what: string }> = [];
  const check = (path: string, what: string) => {
    const code = existsSync(path) ? denied(path) : null;
    if (code) blocked.push({ path, code, what });
  };
  check(file, `${file} is read-only for this user`);
  for (const path of sidecars) check(path, `${path} is read-only for this user`);
  const dirCode = denied(dir);
  // The directory matters only for a -wal or -shm file SQLite would have to create.
  if (dirCode && !sidecars.every((path) => existsSync(path) && !denied(path)))
    blocked.push({
      path: dir,
      code: dirCode,
      what: `its directory ${dir} is read-only for this user (SQLite creates ${file}-wal and ${file}-shm there)`,
    });
  if (blocked.length === 0) return null;
  const paths = blocked.map((b) => b.path);
  if (blocked.some((b) => b.code === 'EROFS'))
    return {
      reason: `${file} is on a read-only file system`,
      fix: `copy it to a writable place and point --db or WARDEN_DB at the copy, or remount the file system read-write`,
      paths,
    };
  const uid = process.getuid?.();
  const foreign = paths.filter((path) => uid !== undefined && ownerOf(path) !== uid);
  const chmod = `chmod u+w ${paths.map(shellQuote).join(' ')}`;
  return {
    reason: blocked.map((b) => b.what).join('; '),
    fix:
      foreign.length === 0
        ? chmod
        : `${foreign.join(' and ')} ${foreign.length === 1 ? 'belongs' : 'belong'} to another user: run Warden as the owner, or have the owner run ${chmod} (or root chown them to you)`,
    paths,
  };
}

function ownerOf(path: string): number | undefined {
  try {
    return statSync(path).uid;
  } catch {
    return undefined;
  }
}

/**
 * STORE_READ_ONLY for `file`: it says that this is a permission problem, what is read-only and
 * how to fix it. `problem` defaults to asking access(2) again; `sqliteCode` is the driver's
 * code when SQLite refused the write.
 */
export function readOnlyError(
  file: string,
  options: { problem?: WriteAccessProblem | null; sqliteCode?: string; cause?: unknown } = {},
): WardenError {
  const problem = options.problem === undefined ? writeAccessProblem(file) : options.problem;
  const reason =
    problem?.reason ??
    `SQLite refused to write it (${options.sqliteCode ?? 'SQLITE_READONLY'}) although the file and its directory look writable`;
  const fix =
    problem?.fix ??
    `check the owner and mode of ${file}, ${file}-wal, ${file}-shm and their directory (ls -l)`;
  return new WardenError(
    'STORE_READ_ONLY',
    `${file} cannot be written, a permission problem: ${reason}. To make it writable: ${fix}. Nothing was changed; commands that only read (ps, inspect, events, ledger verify, doctor) still work.`,
    {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      details: {
        file,
        read_only: problem?.paths ?? [],
        fix,
        ...(options.sqliteCode ? { sqlite_code: options.sqliteCode } : {}),
      },
    },
  );
}
