/**
 * How other commands find the daemon (`warden serve`) of a Warden home, and how two daemons on
 * one home are kept apart. Two files in WARDEN_HOME, both 0600:
 *
 * - `daemon.json` — the **discovery file**, `{ pid, url, started_at, version, database }`.
 *   The daemon writes it when it is ready to serve ({@link writeDaemonFile}: temp file + rename,
 *   so a reader sees the old file or the whole new one, never half) and removes it on a clean
 *   exit ({@link removeDaemonFile}). A daemon killed with SIGKILL leaves it behind: a reader
 *   trusts it only while its pid is alive on this host ({@link readRunningDaemon}).
 * - `daemon.lock` — the **exclusive-run guard** ({@link acquireDaemonLock}), taken before the
 *   daemon opens the store and held until it exits; `warden restore` takes it too, so a daemon
 *   cannot start in the middle of a restore. It is created with O_EXCL, so of two processes
 *   creating it at once exactly one succeeds.
 *
 * **Stale locks and the race they hide.** A holder killed with SIGKILL leaves `daemon.lock`
 * naming a dead pid, and the next holder must take it over. The naive takeover — see the dead
 * pid, unlink, create — is racy: A and B both read the stale file; A unlinks it and creates its
 * own; B, acting on what it read before, unlinks **A's live lock** and creates its own, and two
 * daemons run. So a takeover is serialised by a second O_EXCL file, `daemon.lock.takeover`:
 * only its holder may unlink `daemon.lock`, and only after reading it again under the takeover
 * file and finding the same dead pid. B then either fails to create the takeover file (and
 * retries), or gets it after A finished and reads A's live pid: DAEMON_RUNNING. The takeover
 * file is held for a few system calls; one left by a process killed inside them is removed once
 * it is older than {@link TAKEOVER_STALE_MS} (two processes doing THAT at the same instant could
 * still collide: it needs a SIGKILL within microseconds of a takeover, then two starts within
 * microseconds of each other, and is accepted).
 *
 * Liveness is `process.kill(pid, 0)` (EPERM: alive, another user's). It cannot tell a reused
 * pid from the original process: a stale file whose pid now belongs to an unrelated process
 * reads as alive, and the error says which file to remove once that pid is not Warden.
 */
import {
  closeSync,
  fsyncSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

import { z } from 'zod';

import { WardenError } from '../core/index.ts';

/** What a running daemon publishes in `WARDEN_HOME/daemon.json`. */
export interface DaemonInfo {
  readonly pid: number;
  /** Where clients connect, e.g. `ws://127.0.0.1:7421/acp`. */
  readonly url: string;
  /** When the daemon started, in ms since the epoch. */
  readonly started_at: number;
  /** The Warden version the daemon runs. */
  readonly version: string;
  /** The database file it serves (absolute path). */
  readonly database: string;
}

const daemonInfoSchema = z.object({
  pid: z.number().int().positive(),
  url: z.string().min(1),
  started_at: z.number(),
  version: z.string(),
  database: z.string(),
});

/**
 * Why a lock is held: a daemon serving, a restore replacing the database, or a migrate copying
 * it to PostgreSQL (no daemon may change its history meanwhile).
 */
export type DaemonLockPurpose = 'serve' | 'restore' | 'migrate';

const lockSchema = z.object({
  pid: z.number().int().positive(),
  purpose: z.enum(['serve', 'restore', 'migrate']),
  acquired_at: z.number(),
});

export const DAEMON_FILE = 'daemon.json';
export const DAEMON_LOCK_FILE = 'daemon.lock';
/** A takeover file older than this was left by a process that died holding it. */
export const TAKEOVER_STALE_MS = 10_000;

export function daemonFilePath(home: string): string {
  return join(home, DAEMON_FILE);
}

/** True when `pid` is a running process on this host (EPERM: running, as another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Publishes `info` as `WARDEN_HOME/daemon.json` (mode 0600): written to a temp file in the home,
 * then renamed over the file, so readers never see a partial file.
 */
export function writeDaemonFile(home: string, info: DaemonInfo): void {
  const file = daemonFilePath(home);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileDurably(temp, `${JSON.stringify(daemonInfoSchema.parse(info), null, 2)}\n`);
  renameSync(temp, file);
}

/**
 * Removes `daemon.json` if it still names `pid` (a newer daemon's file is left alone). Returns
 * true when it removed the file.
 */
export function removeDaemonFile(home: string, pid: number): boolean {
  const file = daemonFilePath(home);
  const info = readDaemonFile(home);
  if (info?.pid !== pid) return false;
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false; // already gone
  }
}

/** The contents of `daemon.json`, or null when it is missing or unreadable. */
export function readDaemonFile(home: string): DaemonInfo | null {
  const text = readText(daemonFilePath(home));
  if (text === null) return null;
  try {
    const parsed = daemonInfoSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null; // not JSON: a file this module never wrote whole
  }
}

/**
 * The daemon running on `home`: the info of `daemon.json` when the file exists and its pid is
 * alive on this host, else null. A file naming a dead pid (a daemon killed with SIGKILL) is
 * stale: it is removed and ignored.
 */
export function readRunningDaemon(home: string): DaemonInfo | null {
  const info = readDaemonFile(home);
  if (!info) return null;
  if (isProcessAlive(info.pid)) return info;
  removeDaemonFile(home, info.pid);
  return null;
}

/** DAEMON_RUNNING for the daemon `info` describes, with `{ pid, url }` in its details. */
export function daemonRunningError(info: DaemonInfo, doing: string): WardenError {
  return new WardenError(
    'DAEMON_RUNNING',
    `a Warden daemon (pid ${info.pid}, ${info.url}) is running on this home; stop it before ${doing}`,
    { details: { pid: info.pid, url: info.url } },
  );
}

/** The exclusive-run guard of a home; release it when done (idempotent). */
export interface DaemonLock {
  readonly file: string;
  readonly pid: number;
  release(): void;
}

/**
 * Takes `WARDEN_HOME/daemon.lock` for this process, taking over a lock whose holder is dead.
 * DAEMON_RUNNING (details `{ pid, url?, purpose, file }`) when a live process holds it.
 * See the module comment for the takeover race this handles.
 */
export function acquireDaemonLock(home: string, purpose: DaemonLockPurpose = 'serve'): DaemonLock {
  const file = join(home, DAEMON_LOCK_FILE);
  const content = `${JSON.stringify({ pid: process.pid, purpose, acquired_at: Date.now() })}\n`;
  // Each round either creates the lock, or removes one stale holder and tries again; a few
  // rounds cover a takeover file being held by another process for a moment.
  for (let round = 0; round < 50; round++) {
    if (createExclusive(file, content)) return lockHandle(file);
    const holder = readLock(file);
    if (holder && holder.pid !== process.pid && isProcessAlive(holder.pid))
      throw lockHeldError(home, file, holder);
    if (holder?.pid === process.pid) return lockHandle(file); // this process holds it already
    // Dead holder (or a garbled file, which no holder writes: locks appear whole).
    takeOverStale(file, holder);
    if (round > 0) sleepMs(Math.min(5 * round, 50));
  }
  throw new WardenError(
    'DAEMON_RUNNING',
    `could not take ${file}: other processes kept taking it over; retry`,
    { details: { file } },
  );
}

function lockHandle(file: string): DaemonLock {
  let released = false;
  return {
    file,
    pid: process.pid,
    release() {
      if (released) return;
      released = true;
      // Only our own lock: after a takeover (we were presumed dead) it belongs to someone else.
      if (readLock(file)?.pid === process.pid) unlinkQuietly(file);
    },
  };
}

function lockHeldError(
  home: string,
  file: string,
  holder: z.output<typeof lockSchema>,
): WardenError {
  const daemon = readDaemonFile(home);
  const url = daemon?.pid === holder.pid ? daemon.url : undefined;
  const what =
    holder.purpose === 'restore'
      ? `a warden restore (pid ${holder.pid}) is replacing the database of this home`
      : holder.purpose === 'migrate'
        ? `a warden migrate (pid ${holder.pid}) is copying the database of this home`
        : `a Warden daemon (pid ${holder.pid}${url ? `, ${url}` : ''}) is running on this home`;
  return new WardenError(
    'DAEMON_RUNNING',
    `${what}; wait for it or stop it (if pid ${holder.pid} is not Warden, the pid was reused: remove ${file})`,
    { details: { pid: holder.pid, ...(url ? { url } : {}), purpose: holder.purpose, file } },
  );
}

/** Removes `file` if it still shows the dead holder `seen`, under the takeover file. */
function takeOverStale(file: string, seen: z.output<typeof lockSchema> | null): void {
  const guard = `${file}.takeover`;
  if (!createGuard(guard)) {
    // Someone is taking over right now, or died doing it long ago.
    const age = ageMs(guard);
    if (age !== null && age > TAKEOVER_STALE_MS) unlinkQuietly(guard);
    return;
  }
  try {
    const now = readLock(file);
    const same =
      seen === null ? now === null : now?.pid === seen.pid && now.acquired_at === seen.acquired_at;
    if (same && (now === null || !isProcessAlive(now.pid))) unlinkQuietly(file);
  } finally {
    unlinkQuietly(guard);
  }
}

function readLock(file: string): z.output<typeof lockSchema> | null {
  const text = readText(file);
  if (text === null) return null;
  try {
    const parsed = lockSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * Creates `file` with `content` (0600) unless it exists; false when it exists. The content is
 * written to a temp file first and hard-linked into place (link fails with EEXIST like O_EXCL),
 * so the file appears whole: a reader never sees a lock without its pid, which it would have to
 * take for a dead holder's.
 */
function createExclusive(file: string, content: string): boolean {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileDurably(temp, content);
  try {
    linkSync(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkQuietly(temp);
  }
}

/** Creates `file` unless it exists (O_EXCL); false when it exists. */
function createGuard(file: string): boolean {
  try {
    closeSync(openSync(file, 'wx', 0o600));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

function writeFileDurably(file: string, content: string): void {
  const fd = openSync(file, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function ageMs(file: string): number | null {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
