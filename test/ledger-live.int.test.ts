/**
 * `ledger verify` on a live database (issue 6, defect 6): verification reads one consistent
 * snapshot, so events that another process appends while it runs never look like a break, and
 * a real tamper is still found at its seq.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { IdGenerator, ManualClock, systemClock } from '../src/core/index.ts';
import { verifyLedger } from '../src/kernel/index.ts';
import { openSqliteStore, SessionDirectory, type Store } from '../src/store/index.ts';
import { editEventData } from './helpers/event-tamper.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const APPENDER = fileURLToPath(new URL('./helpers/event-appender.ts', import.meta.url));
const VERIFY_RUNS = 100;

const children: ChildProcess[] = [];

/** Starts the appender child and resolves once its first commit is in. */
function startAppender(db: string, sessionIds: readonly string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [APPENDER, db, ...sessionIds], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`appender exited early with ${String(code)}`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (chunk.includes('ready')) resolve(child);
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function sessions(store: Store, keys: readonly string[]): Promise<string[]> {
  const directory = new SessionDirectory(store, new IdGenerator(systemClock), systemClock);
  const ids: string[] = [];
  for (const key of keys) ids.push((await directory.ensure(key)).id);
  return ids;
}

describe('ledger verify on a live database', () => {
  afterEach(async () => {
    for (const child of children.splice(0)) await stop(child);
  });
  afterAll(removeTempDirs);

  it('reports no break while another process appends, and still finds a real tamper', async () => {
    const file = join(tempDir(), 'warden.db');
    const store = await openSqliteStore({ file });
    try {
      const ids = await sessions(store, ['live:a', 'live:b', 'live:c']);
      const appender = await startAppender(file, ids);

      const falseBreaks: unknown[] = [];
      let lastCount = 0;
      for (let run = 0; run < VERIFY_RUNS; run++) {
        const result = await verifyLedger(store);
        if (!result.ok) falseBreaks.push(result.sessions.filter((s) => !s.ok));
        lastCount = result.events;
      }
      expect(falseBreaks).toEqual([]);
      // The appender really ran during the verifications: the log kept growing.
      const before = lastCount;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await verifyLedger(store)).events).toBeGreaterThan(before);
      expect(appender.exitCode).toBeNull();

      // A real tamper, made while the appender keeps going, is found at its seq.
      const target = ids[1]!;
      const raw = new Database(file);
      try {
        editEventData(raw, target, 7, JSON.stringify({ tampered: true }));
      } finally {
        raw.close();
      }
      const tampered = await verifyLedger(store);
      expect(tampered.ok).toBe(false);
      const broken = tampered.sessions.filter((s) => !s.ok);
      expect(broken.map((s) => s.session_id)).toEqual([target]);
      expect(broken[0]!.break).toMatchObject({ seq: 7, reason: 'hash_mismatch' });
      expect((await verifyLedger(store, target)).sessions[0]!.break?.seq).toBe(7);
    } finally {
      await store.close();
    }
  });

  it.each([
    ['a database file', true],
    [':memory:', false],
  ])('a snapshot of %s does not see later commits', async (_name, onDisk) => {
    const clock = new ManualClock();
    const store = await openSqliteStore({
      file: onDisk ? join(tempDir(), 'warden.db') : ':memory:',
      clock,
    });
    try {
      const [id] = await sessions(store, ['snap']);
      const snapshot = await store.openSnapshot();
      try {
        await store.commit([
          {
            op: 'event',
            event: { session_id: id!, type: 'task.progress', trace_id: 't', data: 1 },
          },
        ]);
        expect((await store.getSession(id!))?.last_seq).toBe(2);
        expect((await snapshot.getSession(id!))?.last_seq).toBe(1);
        expect((await snapshot.listSessions()).map((s) => s.last_seq)).toEqual([1]);
        expect((await snapshot.readEvents({ sessionId: id! })).map((e) => e.seq)).toEqual([1]);
      } finally {
        await snapshot.close();
        await snapshot.close();
      }
      expect((await verifyLedger(store)).ok).toBe(true);
    } finally {
      await store.close();
    }
  });
});
