/**
 * A database this user cannot write: commands that only read work and change nothing; commands
 * that write fail with STORE_READ_ONLY (exit 6), saying it is a permission problem, naming the
 * file and the fix, and change nothing; `doctor` calls it healthy but read-only, never damaged.
 * Root ignores permission bits, so as root the CLI runs as `nobody` (helpers/unprivileged.ts):
 * the real read-only condition either way.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openSqliteStore } from '../src/store/index.ts';
import { SQLITE_MIGRATIONS } from '../src/store/migrations/sqlite.ts';
import { type CliResult, json, runCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { type ChildUser, unprivilegedUser } from './helpers/unprivileged.ts';
import { sessionRow } from './store-contract/contract.ts';

let user: ChildUser | null = null;
const dirs: string[] = [];

afterAll(() => {
  // A non-root user cannot delete files in a read-only directory.
  for (const dir of dirs) if (existsSync(dir)) chmodSync(dir, 0o755);
  removeTempDirs();
});

/** A directory the CLI's user owns. */
function ownedDir(): string {
  const dir = tempDir('warden-ro-');
  if (user) chownSync(dir, user.uid, user.gid);
  dirs.push(dir);
  return dir;
}

function asCliUser(): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

/** Whether the CLI's user may write `path` (`test -w`, as that user). */
function writableForCli(path: string): boolean {
  const result = spawnSync('sh', ['-c', 'test -w "$0"', path], asCliUser());
  return result.status === 0;
}

function cli(args: readonly string[], home: string): Promise<CliResult> {
  return runCli(args, { home, env: { HOME: home }, ...(user ? { user } : {}) });
}

/** Every entry of `dir` (size, mode, mtime, content hash) and the directory's own mtime. */
function snapshot(dir: string): unknown {
  return {
    dir: statSync(dir).mtimeMs,
    entries: readdirSync(dir)
      .sort()
      .map((name) => {
        const stat = statSync(join(dir, name));
        // A directory (the tools' workspace) is compared by its own mode and mtime.
        const sha = stat.isDirectory()
          ? 'dir'
          : createHash('sha256')
              .update(readFileSync(join(dir, name)))
              .digest('hex');
        return { name, size: stat.size, mode: stat.mode, mtimeMs: stat.mtimeMs, sha };
      }),
  };
}

interface DoctorJson {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; detail: string; warning?: string; fix?: string }>;
}

function databaseCheck(result: CliResult): DoctorJson['checks'][number] {
  const check = json<DoctorJson>(result).checks.find((c) => c.name === 'database');
  if (!check) throw new Error(`doctor printed no database check:\n${result.stdout}`);
  return check;
}

function expectReadOnlyRefusal(result: CliResult, ...named: string[]): void {
  expect(result.code, result.stderr).toBe(6);
  expect(result.stderr).toContain('[STORE_READ_ONLY]');
  expect(result.stderr).toContain('a permission problem');
  expect(result.stderr).toContain(`chmod u+w ${named.join(' ')}`);
  expect(result.stderr).not.toContain('INTERNAL');
}

describe('a database this user cannot write', () => {
  let home: string;
  let db: string;
  let waitingPid: string;
  let interruptId: string;

  beforeAll(async () => {
    user = unprivilegedUser();
    home = ownedDir();
    db = join(home, 'warden.db');
    expect((await cli(['init'], home)).code).toBe(0);
    // One run waits for a sign-off (an interrupt to approve), one ended on its budget.
    const waiting = await cli(['run', 'examples/review-loop.yaml', '--no-interactive'], home);
    expect(waiting.code, waiting.stderr).toBe(4);
    expect((await cli(['run', 'examples/budget-exhausted.yaml'], home)).code).toBe(3);
    const [run] = json<Array<{ pid: string }>>(
      await cli(['ps', '--json', '--state=waiting'], home),
    );
    waitingPid = run!.pid;
    const [interrupt] = json<Array<{ id: string }>>(await cli(['interrupts', '--json'], home));
    interruptId = interrupt!.id;
    expect(readdirSync(home).filter((name) => /-(wal|shm)$/.test(name))).toEqual([]);
  }, 60_000);

  it('file read-only: ps, inspect, events, interrupts, tasks, dlq, ledger verify and doctor work and change nothing', async () => {
    chmodSync(db, 0o444);
    expect(writableForCli(db), 'the test must meet a real read-only file').toBe(false);
    expect(writableForCli(home)).toBe(true);
    const before = snapshot(home);

    const ps = await cli(['ps', '--json'], home);
    expect(ps.code, ps.stderr).toBe(0);
    expect(json<unknown[]>(ps)).toHaveLength(2);
    const inspect = await cli(['inspect', waitingPid], home);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toContain('waiting');
    const events = await cli(['events', '--process', waitingPid], home);
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout).toContain('process.created');
    const interrupts = await cli(['interrupts', '--json'], home);
    expect(interrupts.code, interrupts.stderr).toBe(0);
    expect(json<Array<{ id: string }>>(interrupts).map((i) => i.id)).toEqual([interruptId]);
    expect((await cli(['tasks'], home)).code).toBe(0);
    expect((await cli(['dlq'], home)).code).toBe(0);
    const ledger = await cli(['ledger', 'verify'], home);
    expect(ledger.code, ledger.stderr).toBe(0);
    expect(ledger.stdout).toContain('ledger ok');

    const doctor = await cli(['doctor', '--json'], home);
    expect(doctor.code, doctor.stdout).toBe(0);
    const check = databaseCheck(doctor);
    expect(check.ok).toBe(true);
    expect(check.detail).toContain('integrity_check: ok, read-only');
    expect(check.warning).toContain(`${db} is read-only for this user`);
    expect(check.fix).toBe(`chmod u+w ${db}`);
    const human = await cli(['doctor'], home);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^! database {4}.*read-only$/m);
    expect(human.stdout).toContain(`fix: chmod u+w ${db}`);
    expect(human.stdout).not.toMatch(/backup|move it aside/);

    expect(snapshot(home)).toEqual(before);
  }, 60_000);

  it('file read-only: run, submit, approve, cancel, resume and init fail with STORE_READ_ONLY and change nothing', async () => {
    chmodSync(db, 0o444);
    const before = snapshot(home);
    for (const args of [
      ['run', 'examples/budget-exhausted.yaml'],
      ['submit', 'hello'],
      ['approve', interruptId],
      ['cancel', waitingPid],
      ['resume', waitingPid, '--no-interactive'],
      ['init'],
    ]) {
      const result = await cli(args, home);
      expectReadOnlyRefusal(result, db);
      expect(result.stderr).toContain(`${db} cannot be written`);
    }
    const refused = await cli(['approve', interruptId, '--json'], home);
    expect(json<{ error: { code: string; details: unknown } }>(refused).error).toMatchObject({
      code: 'STORE_READ_ONLY',
      details: { file: db, read_only: [db], fix: `chmod u+w ${db}` },
    });
    expect(snapshot(home)).toEqual(before);
  }, 60_000);

  it('directory read-only too: reads still work (without -wal/-shm), writes name the directory', async () => {
    chmodSync(db, 0o444);
    chmodSync(home, 0o555);
    try {
      expect(writableForCli(home), 'the test must meet a real read-only directory').toBe(false);
      const before = snapshot(home);
      for (const args of [['ps'], ['inspect', waitingPid], ['events'], ['ledger', 'verify']]) {
        const result = await cli(args, home);
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      }
      const doctor = await cli(['doctor', '--json'], home);
      expect(doctor.code, doctor.stdout).toBe(0);
      expect(databaseCheck(doctor)).toMatchObject({ ok: true, fix: `chmod u+w ${db} ${home}` });
      const approve = await cli(['approve', interruptId], home);
      expectReadOnlyRefusal(approve, db, home);
      expect(approve.stderr).toContain(`its directory ${home} is read-only for this user`);
      expect(snapshot(home)).toEqual(before);
    } finally {
      chmodSync(home, 0o755);
    }
  }, 60_000);

  it('while a writer has it open, a reader that cannot write sees its commits live', async () => {
    chmodSync(db, 0o644);
    // This process can write it (it opened it before the chmod, or it is root); the CLI cannot.
    const writer = await openSqliteStore({ file: db });
    try {
      chmodSync(db, 0o444);
      await writer.commit([{ op: 'session.insert', row: sessionRow({ key: 'live-writer' }) }]);
      // The commit is only in the WAL: a copy of the database file would not show it.
      expect(statSync(`${db}-wal`).size).toBeGreaterThan(0);
      const ledger = await cli(['ledger', 'verify', '--json'], home);
      expect(ledger.code, ledger.stderr).toBe(0);
      expect(
        json<{ sessions: Array<{ key: string }> }>(ledger).sessions.map((s) => s.key),
      ).toContain('live-writer');
      expectReadOnlyRefusal(await cli(['submit', 'hello'], home), db);
    } finally {
      await writer.close();
    }
  }, 60_000);

  it('the fix doctor prints makes it writable again: approve and resume then work', async () => {
    chmodSync(db, 0o444);
    chmodSync(home, 0o555);
    const fix = databaseCheck(await cli(['doctor', '--json'], home)).fix!;
    expect(fix).toBe(`chmod u+w ${db} ${home}`);
    // As the database's owner, the way a user would.
    const applied = spawnSync('sh', ['-c', fix], { encoding: 'utf8', ...asCliUser() });
    expect(applied.status, applied.stderr).toBe(0);
    expect(databaseCheck(await cli(['doctor', '--json'], home)).warning).toBeUndefined();
    const approve = await cli(['approve', interruptId], home);
    expect(approve.code, approve.stderr).toBe(0);
    const resume = await cli(['resume', waitingPid, '--no-interactive'], home);
    expect(resume.code, resume.stderr).toBe(0);
    expect(resume.stdout).toContain('completed');
  }, 60_000);
});

describe('a read-only database that cannot be used as it is', () => {
  let home: string;

  beforeAll(async () => {
    user ??= unprivilegedUser();
    home = ownedDir();
    expect((await cli(['init'], home)).code).toBe(0);
  }, 60_000);

  /** `bytes` as a database file the CLI's user owns, read-only, in its own directory. */
  function readOnlyFile(bytes: Buffer | null, from?: string): string {
    const file = join(ownedDir(), 'warden.db');
    if (from) copyFileSync(from, file);
    else writeFileSync(file, bytes!);
    if (user) chownSync(file, user.uid, user.gid);
    return file;
  }

  it('a file that is not a database is still STORE_CORRUPT, for readers and writers alike', async () => {
    const file = readOnlyFile(randomBytes(8192));
    chmodSync(file, 0o444);
    const dir = join(file, '..');
    const before = snapshot(dir);
    for (const args of [['ps'], ['ledger', 'verify'], ['run', 'examples/budget-exhausted.yaml']]) {
      const result = await cli(['--db', file, ...args], home);
      expect(result.code, result.stderr).toBe(6);
      expect(result.stderr).toContain('[STORE_CORRUPT]');
    }
    const doctor = await cli(['--db', file, 'doctor', '--json'], home);
    expect(doctor.code).toBe(1);
    const check = databaseCheck(doctor);
    expect(check).toMatchObject({ ok: false });
    expect(check.detail).toContain('[STORE_CORRUPT]');
    expect(check.fix).toContain('backup');
    expect(snapshot(dir)).toEqual(before);
  }, 60_000);

  it('an older schema that would need upgrading is refused with what to do, and left as it was', async () => {
    const file = readOnlyFile(null, join(home, 'warden.db'));
    const latest = SQLITE_MIGRATIONS.at(-1)!.version;
    const older = new Database(file);
    older.pragma(`user_version = ${latest - 1}`);
    older.close();
    chmodSync(file, 0o444);
    const dir = join(file, '..');
    const before = snapshot(dir);
    const ps = await cli(['--db', file, 'ps'], home);
    expectReadOnlyRefusal(ps, file);
    expect(ps.stderr).toContain(
      `schema version ${latest - 1} and this Warden needs version ${latest}`,
    );
    const doctor = await cli(['--db', file, 'doctor', '--json'], home);
    expect(databaseCheck(doctor)).toMatchObject({ ok: false, fix: `chmod u+w ${file}` });
    expect(snapshot(dir)).toEqual(before);
  }, 60_000);
});
