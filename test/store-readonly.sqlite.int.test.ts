/**
 * The SQLite store on a database this process cannot write: `intent: 'read'` opens it read-only
 * (an in-memory copy, or a live connection while a writer has it open), reads and snapshots
 * work, every write fails with STORE_READ_ONLY, and nothing on disk changes; a writer is refused
 * up front. Driver errors about permissions are never classed as corruption.
 *
 * Root ignores permission bits, so as root the probe runs as `nobody` (helpers/unprivileged.ts).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openSqliteStore } from '../src/store/index.ts';
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

/** A Warden database with one session and event, closed, owned by the probe's user. */
async function wardenFile(): Promise<string> {
  const dir = tempDir('warden-ro-store-');
  dirs.push(dir);
  const file = join(dir, 'w.db');
  const store = await openSqliteStore({ file });
  const session = sessionRow({ key: 'kept' });
  await store.commit([
    { op: 'session.insert', row: session },
    eventOp(session.id, 'note.added', { n: 1 }),
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
  commit: string;
  commitMessage: string;
  writer: string;
}

/** Opens `file` with `intent: 'read'` in a child process run as the probe's user. */
function probe(file: string): Probe {
  const code = `
    import { openSqliteStore } from ${JSON.stringify(moduleUrl('src/store/index.ts'))};
    const file = ${JSON.stringify(file)};
    const code = async (promise) => promise.then(() => 'ok', (error) => error.code);
    const store = await openSqliteStore({ file, intent: 'read' });
    const sessions = await store.listSessions();
    const kept = sessions.find((s) => s.key === 'kept');
    const events = (await store.readEvents({ sessionId: kept.id })).length;
    const snapshot = await store.openSnapshot();
    const snapshotSessions = (await snapshot.listSessions()).length;
    await snapshot.close();
    let commitMessage = '';
    const commit = await store
      .commit([{ op: 'service.delete', name: 'nothing' }])
      .then(() => 'ok', (error) => ((commitMessage = error.message), error.code));
    await store.close();
    const writer = await code(openSqliteStore({ file }));
    console.log(JSON.stringify({
      readOnly: store.readOnly, sessions: sessions.map((s) => s.key), events, snapshotSessions,
      commit, commitMessage, writer,
    }));
  `;
  const result = spawnSync(user?.node ?? process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  if (result.status !== 0) throw new Error(`the probe failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as Probe;
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
