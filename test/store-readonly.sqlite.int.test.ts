/**
 * The SQLite store on a database this process cannot write: `intent: 'read'` opens it read-only
 * (an in-memory copy, or a live connection while a writer has it open), reads and snapshots
 * work, every write fails with STORE_READ_ONLY, and nothing on disk changes; a writer is refused
 * up front. Driver errors about permissions are never classed as corruption.
 *
 * Root ignores permission bits, so as root the probe runs as `nobody` (helpers/unprivileged.ts).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openSqliteStore } from '../src/store/index.ts';
import { SQLITE_MIGRATIONS } from '../src/store/migrations/sqlite.ts';
import { classifySqliteError } from '../src/store/sqlite/driver-errors.ts';
import { moduleUrl } from './helpers/child.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { type ChildUser, unprivilegedUser } from './helpers/unprivileged.ts';
import { eventOp, sessionRow } from './store-contract/contract.ts';

let user: ChildUser | null = null;
const dirs: string[] = [];

beforeAll(() => {
  user = unprivilegedUser();
});

afterAll(() => {
  for (const dir of dirs) if (existsSync(dir)) chmodSync(dir, 0o755);
  removeTempDirs();
});

/**
 * A Warden database with one session and event, a kv entry and an audit record, closed, owned
 * by the probe's user.
 */
async function wardenFile(name = 'w.db'): Promise<string> {
  const dir = tempDir('warden-ro-store-');
  dirs.push(dir);
  const file = join(dir, name);
  const store = await openSqliteStore({ file });
  const session = sessionRow({ key: 'kept' });
  await store.commit([
    { op: 'session.insert', row: session },
    eventOp(session.id, 'note.added', { n: 1 }),
    { op: 'kv.set', namespace: 'ns', key: 'k', value: { v: 1 }, now: 1 },
    {
      op: 'audit.append',
      records: [
        {
          ts: 1,
          trace_id: 'tr',
          principal: 'agent:w/a',
          action: 'kv.get',
          resource: 'kv:ns/k',
          decision: 'allow',
          decided: 'allow',
          reasons: ['r'],
          policy_version: 'pv',
          context: {},
        },
      ],
    },
  ]);
  await store.close();
  if (user) for (const path of [dir, file]) chownSync(path, user.uid, user.gid);
  return file;
}

interface Probe {
  readOnly: boolean;
  sessions: string[];
  events: number;
  snapshotSessions: number;
  /** What the security entities' reads gave. */
  security: unknown;
  commit: string;
  commitMessage: string;
  writer: string;
}

/** Runs an ES module (given as text) in a child process as the probe's user; its stdout. */
function asUser(code: string): string {
  const result = spawnSync(user?.node ?? process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  if (result.status !== 0) throw new Error(`the probe failed:\n${result.stderr}`);
  return result.stdout;
}

/** The store module as the probe's user can import it (from a readable copy when root). */
const store = () =>
  JSON.stringify(
    user
      ? pathToFileURL(join(user.root, 'src/store/index.ts')).href
      : moduleUrl('src/store/index.ts'),
  );

/** The code of the error opening `file` with `intent` fails with, as the probe's user. */
function openingFails(file: string, intent: 'read' | 'write'): string {
  return asUser(`
    import { openSqliteStore } from ${store()};
    const options = { file: ${JSON.stringify(file)}, intent: ${JSON.stringify(intent)} };
    await openSqliteStore(options).then(
      (store) => (store.close(), console.log('opened')),
      (error) => console.log(error.code),
    );
  `).trim();
}

/** Opens `file` with `intent: 'read'` in a child process run as the probe's user. */
function probe(file: string): Probe {
  const code = `
    import { openSqliteStore } from ${store()};
    const file = ${JSON.stringify(file)};
    const code = async (promise) => promise.then(() => 'ok', (error) => error.code);
    const store = await openSqliteStore({ file, intent: 'read' });
    const sessions = await store.listSessions();
    const kept = sessions.find((s) => s.key === 'kept');
    const events = (await store.readEvents({ sessionId: kept.id })).length;
    const snapshot = await store.openSnapshot();
    const snapshotSessions = (await snapshot.listSessions()).length;
    await snapshot.close();
    const security = [await store.kvGet('ns', 'k'), await store.verifyAudit(), await store.listGrants()];
    let commitMessage = '';
    const commit = await store
      .commit([{ op: 'service.delete', name: 'nothing' }])
      .then(() => 'ok', (error) => ((commitMessage = error.message), error.code));
    await store.close();
    const writer = await code(openSqliteStore({ file }));
    console.log(JSON.stringify({
      readOnly: store.readOnly, sessions: sessions.map((s) => s.key), events, snapshotSessions,
      security, commit, commitMessage, writer,
    }));
  `;
  return JSON.parse(asUser(code)) as Probe;
}

function listing(dir: string): unknown {
  return {
    dir: statSync(dir).mtimeMs,
    entries: readdirSync(dir)
      .sort()
      .map((name) => {
        const stat = statSync(join(dir, name));
        return { name, size: stat.size, mtimeMs: stat.mtimeMs };
      }),
  };
}

describe('SQLite store: a database this process cannot write', () => {
  it('file read-only: reads from a copy, refuses every write, creates no -wal or -shm', async () => {
    const file = await wardenFile();
    chmodSync(file, 0o444);
    const dir = join(file, '..');
    const before = listing(dir);
    const result = probe(file);
    expect(result).toMatchObject({
      readOnly: true,
      sessions: ['kept'],
      events: 1,
      snapshotSessions: 1,
      security: [{ value: { v: 1 }, version: 1, updated_at: 1 }, { ok: true, count: 1 }, []],
      commit: 'STORE_READ_ONLY',
      writer: 'STORE_READ_ONLY',
    });
    expect(result.commitMessage).toContain(`chmod u+w ${file}`);
    expect(listing(dir)).toEqual(before);
  });

  it('directory read-only too: still reads, and the refusal names the directory', async () => {
    const file = await wardenFile();
    const dir = join(file, '..');
    chmodSync(file, 0o444);
    chmodSync(dir, 0o555);
    try {
      const before = listing(dir);
      const result = probe(file);
      expect(result).toMatchObject({ readOnly: true, events: 1, commit: 'STORE_READ_ONLY' });
      expect(result.commitMessage).toContain(`chmod u+w ${file} ${dir}`);
      expect(listing(dir)).toEqual(before);
    } finally {
      chmodSync(dir, 0o755);
    }
  });

  it('the fix it prints is a command that can be pasted, quoting the path for the shell', async () => {
    const file = await wardenFile("it's a.db");
    chmodSync(file, 0o444);
    const fix = `chmod u+w '${file.replace("it's", "it'\\''s")}'`;
    expect(probe(file).commitMessage).toContain(`To make it writable: ${fix}.`);
    const applied = spawnSync('sh', ['-c', fix], user ? { uid: user.uid, gid: user.gid } : {});
    expect(applied.status).toBe(0);
    expect(statSync(file).mode & 0o200).toBe(0o200);
  });

  it('while a writer has it open: reads live through the -wal, including uncheckpointed commits', async () => {
    const file = await wardenFile();
    const writer = await openSqliteStore({ file });
    try {
      chmodSync(file, 0o444);
      await writer.commit([{ op: 'session.insert', row: sessionRow({ key: 'in-the-wal' }) }]);
      expect(statSync(`${file}-wal`).size).toBeGreaterThan(0);
      const result = probe(file);
      expect(result).toMatchObject({ readOnly: true, commit: 'STORE_READ_ONLY' });
      expect(result.sessions.sort()).toEqual(['in-the-wal', 'kept']);
    } finally {
      await writer.close();
    }
  });
});

describe('SQLite store: a read-only file that cannot be used anyway', () => {
  /** `make` builds the file; it is then the probe user's, read-only, in its own directory. */
  async function readOnly(make: (file: string) => void | Promise<void>): Promise<string> {
    const dir = tempDir('warden-ro-store-');
    dirs.push(dir);
    const file = join(dir, 'w.db');
    await make(file);
    if (user) for (const path of [dir, file]) chownSync(path, user.uid, user.gid);
    chmodSync(file, 0o444);
    return file;
  }

  it('is refused as what it is, for writers (from its header alone) and readers alike', async () => {
    const latest = SQLITE_MIGRATIONS.at(-1)!.version;
    const cases: Array<[string, string]> = [
      [await readOnly((file) => writeFileSync(file, randomBytes(8192))), 'STORE_CORRUPT'],
      [
        await readOnly((file) => {
          const db = new Database(file);
          db.exec('CREATE TABLE notes (body TEXT)');
          db.close();
        }),
        'STORE_CORRUPT',
      ],
      [
        await readOnly(async (file) => {
          await (await openSqliteStore({ file })).close();
          const db = new Database(file);
          db.pragma(`user_version = ${latest + 1}`);
          db.close();
        }),
        'STORE_TOO_NEW',
      ],
    ];
    for (const [file, code] of cases) {
      const before = listing(join(file, '..'));
      expect(openingFails(file, 'write'), `${code} writer`).toBe(code);
      expect(openingFails(file, 'read'), `${code} reader`).toBe(code);
      expect(listing(join(file, '..'))).toEqual(before);
    }
  });

  it('a file this user can neither read nor write is CONFIG_INVALID, as SQLite would say', async () => {
    const file = await readOnly((path) => writeFileSync(path, randomBytes(100)));
    chmodSync(file, 0o000);
    expect(openingFails(file, 'write')).toBe('CONFIG_INVALID');
    expect(openingFails(file, 'read')).toBe('CONFIG_INVALID');
  });

  it('an empty file (a database not written yet) is only a permission problem', async () => {
    const file = await readOnly((path) => writeFileSync(path, ''));
    expect(openingFails(file, 'write')).toBe('STORE_READ_ONLY');
    expect(openingFails(file, 'read')).toBe('STORE_READ_ONLY'); // schema v0 needs creating
  });
});

describe('SQLite driver errors', () => {
  it('a refused write is STORE_READ_ONLY, never STORE_CORRUPT; a path SQLite cannot open is CONFIG_INVALID', () => {
    const file = join(tempDir(), 'w.db');
    const classify = (code: string) => classifySqliteError({ code }, file)?.code;
    for (const code of [
      'SQLITE_READONLY',
      'SQLITE_READONLY_DIRECTORY',
      'SQLITE_READONLY_CANTINIT',
      'SQLITE_READONLY_RECOVERY',
      'SQLITE_PERM',
    ])
      expect(classify(code), code).toBe('STORE_READ_ONLY');
    expect(classify('SQLITE_CANTOPEN')).toBe('CONFIG_INVALID');
    expect(classify('SQLITE_NOTADB')).toBe('STORE_CORRUPT');
    expect(classify('SQLITE_CORRUPT')).toBe('STORE_CORRUPT');
    expect(classifySqliteError({ code: 'SQLITE_READONLY' }, file)?.message).toContain(
      `${file} cannot be written, a permission problem`,
    );
  });
});
