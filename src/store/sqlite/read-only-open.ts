/**
 * How the SQLite store opens its file: for writing, or — for a reader (`intent: 'read'`) when
 * this process cannot write the database — read-only, creating and changing nothing on disk.
 *
 * A read-only open uses one of two connections:
 *
 * - **Live**: when `<file>-wal` and `<file>-shm` exist (a process has the database open, or one
 *   left them behind), or the `-wal` holds commits, a read-only connection reads through them. It sees every commit, also
 *   the ones made after it opened, and creates no file.
 * - **Copy**: otherwise the database file holds every committed transaction (a WAL database
 *   without its `-wal`, or with an empty one, was checkpointed by its last writer). A read-only
 *   connection would still have to create `-wal` and `-shm` — impossible in a read-only
 *   directory, and in a writable one it leaves 0444 copies behind that keep the database
 *   unwritable after its own mode is fixed. So the store reads a private copy of the file into
 *   memory, with its header switched from WAL to rollback journal (SQLite cannot open an
 *   in-memory image in WAL mode). The copy costs memory of the file's size and shows the
 *   database as it was when it was read: a later commit (by someone who can write it) is not
 *   seen. It is taken while nothing changes the file: read, then check that size, mtime and
 *   inode are unchanged and no commit reached a `-wal` meanwhile; otherwise read again (3
 *   tries, then STORE_BUSY). A file over 1 GiB is read live instead: SQLite then needs a
 *   writable directory, and leaves `-wal` and `-shm` behind (the STORE_READ_ONLY fix then
 *   names them too).
 *
 * A writer is refused from the file's header alone ({@link refuseWriter}): nothing is copied.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
} from 'node:fs';
import { dirname } from 'node:path';

import Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.ts';
import { classifySqliteError } from './driver-errors.ts';
import { checkCompatible, latestVersion, refuseForeignOrNewer } from './migrate.ts';
import { readOnlyError, type WriteAccessProblem, writeAccessProblem } from './write-access.ts';

/** Who opens the store: a writer needs write access; a reader falls back to read-only. */
export type StoreIntent = 'read' | 'write';

/**
 * Checks `file` before SQLite opens it, creating its directory when the file is missing.
 * Returns null when the database can be written (or created), or why it cannot when it exists
 * but this process cannot write it. Throws NOT_FOUND (`mustExist` and no file),
 * STORE_READ_ONLY (no file, and it cannot be created) and CONFIG_INVALID (a file this process
 * can neither write nor read).
 */
export function checkAccess(file: string, mustExist: boolean): WriteAccessProblem | null {
  if (existsSync(file)) {
    const problem = writeAccessProblem(file);
    if (problem) assertReadable(file);
    return problem;
  }
  if (mustExist)
    throw new WardenError(
      'NOT_FOUND',
      `no Warden database at ${file}; run 'warden init' or check --db`,
      { details: { file } },
    );
  const dir = dirname(file);
  try {
    // Only its owner may read a new database's directory (the event log holds every input).
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw readOnlyError(file, {
      cause: error,
      problem: {
        reason: `its directory ${dir} cannot be created (${code})`,
        fix: `create ${dir} as a user who may and give it to this user, or choose a writable --home or --db`,
        paths: [dir],
      },
    });
  }
  const problem = writeAccessProblem(file);
  if (problem) throw readOnlyError(file, { problem });
  return null;
}

/** CONFIG_INVALID for a file this process can neither write nor read (as SQLite's CANTOPEN). */
function assertReadable(file: string): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new WardenError(
      'CONFIG_INVALID',
      `cannot open ${file} (${code}): this user can neither read nor write it; check its owner and mode (ls -l ${file}), or point --home, --db or WARDEN_DB at another database`,
      { cause: error, details: { file } },
    );
  }
}

const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** Larger files are read in place, not copied (readFileSync stops at 2 GiB; memory). */
const COPY_LIMIT_BYTES = 1_073_741_824;

export interface ReadOnlyConnection {
  readonly db: Database.Database;
  /** True for the in-memory copy, false for a live connection to the file. */
  readonly copy: boolean;
  readonly version: number;
}

/**
 * Refuses a writer on `file`, which it cannot write (`problem` says why): STORE_READ_ONLY,
 * unless the SQLite header (the first 100 bytes, all this reads) shows that the file cannot be
 * used anyway — not an SQLite database, another application's (STORE_CORRUPT), a newer
 * Warden's (STORE_TOO_NEW) — since making it writable would not help then.
 */
export function refuseWriter(file: string, problem: WriteAccessProblem): never {
  const header = Buffer.alloc(100);
  const fd = openSync(file, 'r');
  let length: number;
  try {
    length = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  // An empty file is a database SQLite has not written yet.
  if (length > 0) {
    if (length < header.length || !header.subarray(0, MAGIC.length).equals(MAGIC))
      throw classifySqliteError({ code: 'SQLITE_NOTADB' }, file)!;
    refuseForeignOrNewer(
      file,
      {
        appId: header.readInt32BE(68),
        version: header.readInt32BE(60),
        hasTables: header.readUInt32BE(40) !== 0, // the schema cookie: 0 until a table exists
      },
      latestVersion(SQLITE_MIGRATIONS),
    );
  }
  throw readOnlyError(file, { problem });
}

/**
 * Opens `file`, which this process cannot write (`problem` says why), for reading without
 * writing anything. Refuses a schema that would need migrating (STORE_READ_ONLY), and a file
 * that is not a usable Warden database as opening it for writing would.
 */
export function openReadOnly(
  file: string,
  problem: WriteAccessProblem,
  options: { busyTimeoutMs: number; lockSliceMs: number },
): ReadOnlyConnection {
  // A -wal with frames in it holds commits the file does not: only a live connection sees them.
  const live =
    (existsSync(`${file}-wal`) && existsSync(`${file}-shm`)) ||
    walBytes(file) > 0 ||
    statSync(file).size > COPY_LIMIT_BYTES;
  const db = live
    ? new Database(file, { readonly: true, fileMustExist: true, timeout: options.busyTimeoutMs })
    : new Database(readStableCopy(file), { readonly: true });
  try {
    const version = checkCompatible(db, SQLITE_MIGRATIONS, file);
    const latest = latestVersion(SQLITE_MIGRATIONS);
    if (version !== latest)
      throw new WardenError(
        'STORE_READ_ONLY',
        `${file} has schema version ${version} and this Warden needs version ${latest}; upgrading it writes to the file, which this user cannot do (a permission problem: ${problem.reason}). To make it writable: ${problem.fix}; then any warden command upgrades it. Nothing was changed.`,
        { details: { file, schema_version: version, needs: latest, fix: problem.fix } },
      );
    db.pragma('temp_store = MEMORY');
    db.pragma('cache_size = -65536');
    db.pragma(`busy_timeout = ${options.lockSliceMs}`);
    return { db, copy: !live, version };
  } catch (error) {
    db.close();
    throw error;
  }
}

function walBytes(file: string): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0; // no -wal
  }
}

/** Bytes 18 and 19 of the SQLite header: 2 for WAL, 1 for a rollback journal. */
const FORMAT_BYTES = [18, 19] as const;

function readStableCopy(file: string): Buffer {
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = statSync(file);
    const image = readFileSync(file);
    const after = statSync(file);
    const unchanged =
      before.ino === after.ino &&
      before.size === after.size &&
      before.mtimeMs === after.mtimeMs &&
      image.length === after.size &&
      walBytes(file) === 0;
    if (!unchanged) continue;
    // Only a SQLite header is switched; anything else stays as read, for SQLite to refuse.
    if (image.subarray(0, MAGIC.length).equals(MAGIC))
      for (const at of FORMAT_BYTES) if (image[at] === 2) image[at] = 1;
    return image;
  }
  throw new WardenError(
    'STORE_BUSY',
    `${file} kept changing while it was being read (it is read-only for this user, so it is read as a copy); retry`,
    { details: { file } },
  );
}
