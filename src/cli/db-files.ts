/**
 * File moves for `warden backup` and `warden restore`: putting a finished copy in place without
 * ever showing a partial file, setting a database aside together with its `-wal`, and finding
 * the processes that have a database open.
 *
 * A WAL database is up to three files: `<db>`, `<db>-wal` (commits not yet copied into `<db>`)
 * and `<db>-shm` (an index of the WAL, rebuilt from it when missing). A rollback-journal one may
 * have `<db>-journal`. SQLite finds them by name, so they move together: a `-wal` left under
 * the old name would be replayed into whatever database is put there next — corrupting it.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import { dirname } from 'node:path';

import Database from 'better-sqlite3';

import { WardenError } from '../core/index.ts';

/** Flushes a file (or a directory's entries) to disk. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Moves the finished file `temp` to `dest` in one step. Without `replace`, refuses (INVALID_PARAMS)
 * when `dest` exists, also when it appeared after the caller checked: a hard link fails with
 * EEXIST atomically, where a rename would replace the file.
 */
export function placeFile(temp: string, dest: string, replace: boolean): void {
  if (replace) renameSync(temp, dest);
  else {
    try {
      linkSync(temp, dest);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw existsError(dest);
      throw error;
    }
    unlinkSync(temp);
  }
  fsyncPath(dirname(dest));
}

export function existsError(dest: string): WardenError {
  return new WardenError(
    'INVALID_PARAMS',
    `${dest} already exists; choose another file, or pass --force to replace it`,
    { details: { file: dest } },
  );
}

/** SQLite's files beside a database that belong to it and must move with it. */
const COMPANIONS = ['-wal', '-journal'] as const;

/**
 * Sets the database `file` aside as `aside` with its `-wal` (as `aside-wal`) and `-journal`, and
 * removes its `-shm`; each only if present. Then, best effort, folds `aside-wal` into `aside` so
 * the kept copy is one file (a damaged database is kept as moved). Returns the files kept.
 * Call only while no process has `file` open.
 */
export function moveDatabaseAside(file: string, aside: string): string[] {
  const kept: string[] = [];
  for (const suffix of ['', ...COMPANIONS]) {
    if (!existsSync(`${file}${suffix}`)) continue;
    renameSync(`${file}${suffix}`, `${aside}${suffix}`);
    kept.push(`${aside}${suffix}`);
  }
  if (existsSync(`${file}-shm`)) unlinkSync(`${file}-shm`);
  if (kept.includes(aside) && kept.length > 1) {
    try {
      // The last connection to close checkpoints the WAL into the file and removes it.
      const db = new Database(aside, { fileMustExist: true });
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    } catch {
      // kept as moved: opening `aside` replays its -wal
    }
  }
  fsyncPath(dirname(file));
  return kept.filter((f) => existsSync(f));
}

/**
 * Pids of other processes that have any of `files` open, read from `/proc/<pid>/fd` (Linux:
 * cheap, a few thousand readlinks). Only processes this user may inspect are seen (all of its
 * own); elsewhere, or without `/proc`, returns [] — the check is a safety net, not a lock.
 */
export function processesWithOpen(files: readonly string[]): number[] {
  const targets = new Set<string>();
  for (const file of files) {
    try {
      targets.add(realpathSync(file));
    } catch {
      // not there: nobody has it open
    }
  }
  if (targets.size === 0 || process.platform !== 'linux') return [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // another user's process, or it exited
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (targets.has(target)) {
        found.push(Number(pid));
        break;
      }
    }
  }
  return found;
}
