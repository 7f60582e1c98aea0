/**
 * SQLite-only behaviour of the store (the port contract is in test/store-contract): durability
 * pragmas, migrations and their refusals (which must leave the file untouched), opening rules,
 * and several connections or processes writing and claiming on one file at once.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

import { type ErrorCode, findAuditBreak, findChainBreak, ManualClock } from '../src/core/index.ts';
import { openSqliteStore, type SqliteStoreOptions, type Store } from '../src/store/index.ts';
import { SQLITE_MIGRATIONS } from '../src/store/migrations/sqlite.ts';
import { checksum, WARDEN_APPLICATION_ID } from '../src/store/sqlite/migrate.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import {
  allEvents,
  eventOp,
  expectWardenError,
  sessionRow,
  T0,
  taskRow,
} from './store-contract/contract.ts';
import { auditRecord } from './store-contract/security-entities.ts';

const STORE_MODULE = fileURLToPath(new URL('../src/store/index.ts', import.meta.url));

const open: Store[] = [];
afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function openStore(options: SqliteStoreOptions): Promise<Store> {
  const store = await openSqliteStore(options);
  open.push(store);
  return store;
}

function newFile(): string {
  return join(tempDir(), 'w.db');
}

/** A Warden database with one session, closed again. */
async function wardenFile(file = newFile()): Promise<string> {
  const store = await openSqliteStore({ file });
  await store.commit([{ op: 'session.insert', row: sessionRow() }]);
  await store.close();
  return file;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * Reads through a separate connection, closed afterwards. Read-write but query-only: a
 * read-only connection would leave the -wal and -shm files behind when it closes.
 */
function peek<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { fileMustExist: true });
  db.pragma('query_only = ON');
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Writes through a separate plain connection (creating the file when `create`), then closes. */
function tamper(file: string, fn: (db: Database.Database) => void, create = false): void {
  const db = new Database(file, { fileMustExist: !create });
  try {
    fn(db);
  } finally {
    db.close();
  }
}

/** Another application's SQLite database with one table and row, in rollback-journal mode. */
function foreignDatabase(fn: (db: Database.Database) => void = () => undefined): string {
  const file = newFile();
  tamper(
    file,
    (db) => {
      fn(db);
      db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
      db.prepare('INSERT INTO notes (body) VALUES (?)').run('keep me');
    },
    true,
  );
  return file;
}

function notes(file: string): unknown {
  return peek(file, (db) => db.prepare('SELECT body FROM notes').all());
}

/** Opening `file` fails with `code`, and neither the file nor its directory changes. */
async function expectRefusedUnchanged(file: string, code: ErrorCode): Promise<void> {
  const dir = join(file, '..');
  const before = { hash: sha256(file), entries: readdirSync(dir).sort() };
  await expectWardenError(openSqliteStore({ file }), code);
  expect({ hash: sha256(file), entries: readdirSync(dir).sort() }).toEqual(before);
}

/** Opens a store and returns it with its own connection (to read per-connection pragmas). */
async function openWithConnection(
  options: SqliteStoreOptions,
): Promise<{ store: Store; db: Database.Database }> {
  const spy = vi.spyOn(Database.prototype, 'pragma');
  try {
    const store = await openStore(options);
    const db = spy.mock.contexts[0] as Database.Database | undefined;
    if (!db) throw new Error('the store set no pragma');
    return { store, db };
  } finally {
    spy.mockRestore();
  }
}

describe('SQLite store: durability pragmas', () => {
  it('fast (the default) runs synchronous=NORMAL on a WAL journal', async () => {
    const file = newFile();
    const { store, db } = await openWithConnection({ file });
    expect(store.durability).toBe('fast');
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(peek(file, (other) => other.pragma('journal_mode', { simple: true }))).toBe('wal');
    expect((await store.health()).durability).toBe('fast');
  });

  it('explicit fast runs synchronous=NORMAL', async () => {
    const { store, db } = await openWithConnection({ file: newFile(), durability: 'fast' });
    expect(store.durability).toBe('fast');
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
  });

  it('strict runs synchronous=FULL on a WAL journal', async () => {
    const file = newFile();
    const { store, db } = await openWithConnection({ file, durability: 'strict' });
    expect(store.durability).toBe('strict');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(peek(file, (other) => other.pragma('journal_mode', { simple: true }))).toBe('wal');
    expect((await store.health()).durability).toBe('strict');
  });
});

describe('SQLite store: migrations', () => {
  it('records applied migrations with checksums, user_version and application_id', async () => {
    const file = newFile();
    const store = await openStore({ file, clock: new ManualClock(T0) });
    expect((await store.health()).schemaVersion).toBe(SQLITE_MIGRATIONS.length);
    await store.close();
    const applied = peek(file, (db) => ({
      rows: db.prepare('SELECT * FROM schema_migrations ORDER BY version').all(),
      userVersion: db.pragma('user_version', { simple: true }) as number,
      applicationId: db.pragma('application_id', { simple: true }) as number,
    }));
    expect(applied.userVersion).toBe(SQLITE_MIGRATIONS.at(-1)!.version);
    expect(applied.applicationId).toBe(0x57415244);
    expect(WARDEN_APPLICATION_ID).toBe(0x57415244);
    expect(applied.rows).toEqual(
      SQLITE_MIGRATIONS.map((m) => ({
        version: m.version,
        name: m.name,
        checksum: checksum(m),
        applied_at: T0,
      })),
    );
    expect(applied.rows.map((r) => (r as { name: string }).name)).toEqual(
      SQLITE_MIGRATIONS.map((m) => m.name),
    );
    for (const row of applied.rows) {
      expect((row as { checksum: string }).checksum).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('reopening an existing database does not run migrations again', async () => {
    const file = newFile();
    const first = await openSqliteStore({ file, clock: new ManualClock(T0) });
    const session = sessionRow();
    await first.commit([{ op: 'session.insert', row: session }, eventOp(session.id, 'x')]);
    await first.close();
    const rowsBefore = peek(file, (db) => db.prepare('SELECT * FROM schema_migrations').all());

    const again = await openStore({ file, clock: new ManualClock(T0 + 86_400_000) });
    expect((await again.health(true)).ok).toBe(true);
    expect(await again.getSession(session.id)).toEqual({
      ...session,
      last_seq: 1,
      last_hash: expect.any(String) as unknown,
      updated_at: expect.any(Number) as unknown,
    });
    await again.close();
    expect(peek(file, (db) => db.prepare('SELECT * FROM schema_migrations').all())).toEqual(
      rowsBefore,
    );
    expect(peek(file, (db) => db.pragma('user_version', { simple: true }))).toBe(
      SQLITE_MIGRATIONS.at(-1)!.version,
    );
  });

  it('refuses a database from a newer Warden (STORE_TOO_NEW) without touching it', async () => {
    const file = await wardenFile();
    tamper(file, (db) => db.pragma('user_version = 99'));
    await expectRefusedUnchanged(file, 'STORE_TOO_NEW');
  });

  it('refuses a tampered migration checksum (MIGRATION_MISMATCH) without touching it', async () => {
    const file = await wardenFile();
    tamper(file, (db) => {
      db.prepare('UPDATE schema_migrations SET checksum = ? WHERE version = 1').run('0'.repeat(64));
    });
    await expectRefusedUnchanged(file, 'MIGRATION_MISMATCH');
  });

  it('refuses a database whose applied migration row is missing (MIGRATION_MISMATCH)', async () => {
    const file = await wardenFile();
    tamper(file, (db) => db.exec('DELETE FROM schema_migrations'));
    await expectRefusedUnchanged(file, 'MIGRATION_MISMATCH');
  });
});

describe('SQLite store: refusing files that are not Warden databases', () => {
  it('refuses another application’s SQLite database (STORE_CORRUPT) without touching it', async () => {
    const file = foreignDatabase((db) => db.pragma('journal_mode = WAL'));
    expect(peek(file, (db) => db.pragma('journal_mode', { simple: true }))).toBe('wal');
    await expectRefusedUnchanged(file, 'STORE_CORRUPT');
    expect(notes(file)).toEqual([{ body: 'keep me' }]);
  });

  it('refuses a rollback-journal SQLite database of another application (STORE_CORRUPT)', async () => {
    const file = foreignDatabase();
    expect(peek(file, (db) => db.pragma('journal_mode', { simple: true }))).toBe('delete');
    await expectWardenError(openSqliteStore({ file }), 'STORE_CORRUPT');
    expect(notes(file)).toEqual([{ body: 'keep me' }]);
  });

  it('refuses a file of random bytes (STORE_CORRUPT) without touching it', async () => {
    const file = newFile();
    writeFileSync(file, randomBytes(16_384));
    await expectRefusedUnchanged(file, 'STORE_CORRUPT');
  });

  it('refuses a Warden database whose first 100 bytes were overwritten (STORE_CORRUPT)', async () => {
    const file = await wardenFile();
    const garbage = randomBytes(100);
    garbage.write('not sqlite', 0);
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, garbage, 0, 100, 0);
    } finally {
      closeSync(fd);
    }
    await expectRefusedUnchanged(file, 'STORE_CORRUPT');
  });

  it('mustExist on a missing file is NOT_FOUND and creates nothing', async () => {
    const dir = tempDir();
    const file = join(dir, 'missing.db');
    await expectWardenError(openSqliteStore({ file, mustExist: true }), 'NOT_FOUND');
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('mustExist opens an existing Warden database', async () => {
    const file = await wardenFile();
    const store = await openStore({ file, mustExist: true });
    expect(await store.listSessions()).toHaveLength(1);
  });
});

describe('SQLite store: refusals change nothing', () => {
  it('refuses a rollback-journal non-Warden database without touching it', async () => {
    const file = foreignDatabase();
    await expectRefusedUnchanged(file, 'STORE_CORRUPT');
  });

  it('refuses a rollback-journal database from a newer Warden without touching it', async () => {
    const file = await wardenFile();
    tamper(file, (db) => {
      db.pragma('journal_mode = DELETE');
      db.pragma('user_version = 99');
    });
    await expectRefusedUnchanged(file, 'STORE_TOO_NEW');
  });

  it('mustExist on a file in a missing directory is NOT_FOUND', async () => {
    const dir = join(tempDir(), 'no-such-dir');
    await expectWardenError(
      openSqliteStore({ file: join(dir, 'w.db'), mustExist: true }),
      'NOT_FOUND',
    );
  });
});

describe('SQLite store: several connections on one file', () => {
  it('two connections appending to one session keep seq contiguous and the chain valid', async () => {
    const file = newFile();
    const a = await openStore({ file });
    const b = await openStore({ file });
    const session = sessionRow();
    await a.commit([{ op: 'session.insert', row: session }]);

    const ROUNDS = 150;
    const writer = async (store: Store, name: string): Promise<void> => {
      for (let i = 0; i < ROUNDS; i++) {
        const size = 1 + (i % 3);
        await store.commit(
          Array.from({ length: size }, (_, j) => eventOp(session.id, 'w', { name, i, j })),
        );
        if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await Promise.all([writer(a, 'a'), writer(b, 'b')]);

    const expected =
      2 * Array.from({ length: ROUNDS }, (_, i) => 1 + (i % 3)).reduce((x, y) => x + y);
    const events = await allEvents(a, session.id);
    expect(events).toHaveLength(expected);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
    expect(findChainBreak(events)).toBeNull();
    const tags = events.map((e) => JSON.stringify(e.data));
    expect(new Set(tags).size).toBe(expected);
    // Both writers interleaved, and both see the same head.
    const names = events.map((e) => (e.data as { name: string }).name);
    expect(names.slice(0, expected / 2)).toContain('b');
    const headA = await a.getSession(session.id);
    const headB = await b.getSession(session.id);
    expect(headA).toEqual(headB);
    expect(headA?.last_seq).toBe(expected);
    expect(headA?.last_hash).toBe(events.at(-1)!.hash);
    expect(await allEvents(b, session.id)).toEqual(events);
  });

  it('two connections racing claimTasks claim every task exactly once', async () => {
    const file = newFile();
    const a = await openStore({ file });
    const b = await openStore({ file });
    const session = sessionRow();
    const tasks = Array.from({ length: 200 }, (_, i) =>
      taskRow(session.id, { lane: 'race', sort_key: i }),
    );
    await a.commit([
      { op: 'session.insert', row: session },
      ...tasks.map((row) => ({ op: 'task.insert' as const, row })),
    ]);

    const worker = async (store: Store, workerId: string): Promise<string[]> => {
      const ids: string[] = [];
      for (;;) {
        const claimed = await store.claimTasks({
          lanes: ['race'],
          workerId,
          limit: 1,
          leaseMs: 60_000,
          now: T0,
        });
        if (claimed.length === 0) return ids;
        ids.push(...claimed.map((c) => c.task.id));
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const [fromA, fromB] = await Promise.all([worker(a, 'a'), worker(b, 'b')]);
    expect(fromA.length).toBeGreaterThan(0);
    expect(fromB.length).toBeGreaterThan(0);
    expect(fromA.length + fromB.length).toBe(tasks.length);
    expect(new Set([...fromA, ...fromB])).toEqual(new Set(tasks.map((t) => t.id)));
    expect(await a.listTasks({ states: ['queued'] })).toEqual([]);
    const running = await b.listTasks({ states: ['running'], limit: 1_000 });
    expect(running).toHaveLength(tasks.length);
    expect(running.every((t) => t.attempts === 1)).toBe(true);
    expect(findChainBreak(await allEvents(a, session.id))).toBeNull();
  });

  it('a second OS process racing claimTasks: every task is claimed exactly once', async () => {
    const file = newFile();
    const store = await openStore({ file });
    const session = sessionRow();
    const TASKS = 500;
    const tasks = Array.from({ length: TASKS }, (_, i) =>
      taskRow(session.id, { lane: 'race', available_at: 0, sort_key: i }),
    );
    await store.commit([
      { op: 'session.insert', row: session },
      ...tasks.map((row) => ({ op: 'task.insert' as const, row })),
    ]);

    const script = `
import { openSqliteStore } from ${JSON.stringify(pathToFileURL(STORE_MODULE).href)};
const store = await openSqliteStore({ file: process.env.WARDEN_TEST_DB });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
for (;;) {
  const claimed = await store.claimTasks({
    lanes: ['race'], workerId: 'child', limit: 1, leaseMs: 600000, now: Date.now(),
  });
  if (claimed.length === 0) break;
  process.stdout.write('claimed ' + claimed[0].task.id + '\\n');
  await new Promise((resolve) => setTimeout(resolve, 1)); // leave the lock to the other process
}
await store.close();
process.stdout.write('done\\n');
process.stdin.destroy();
`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, WARDEN_TEST_DB: file },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code));
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('ready\n')) resolve();
      });
      void exited.then((code) => reject(new Error(`child exited (${code}) early: ${stderr}`)));
    });

    child.stdin.write('go\n');
    // Start racing once the child is claiming, so a loaded machine cannot let one side finish
    // before the other begins.
    await new Promise<void>((resolve) => {
      const check = () =>
        stdout.includes('claimed ') || stdout.includes('done') ? resolve() : undefined;
      child.stdout.on('data', check);
      check();
    });
    const mine: string[] = [];
    for (;;) {
      const claimed = await store.claimTasks({
        lanes: ['race'],
        workerId: 'parent',
        limit: 1,
        leaseMs: 600_000,
        now: Date.now(),
      });
      if (claimed.length === 0) break;
      mine.push(claimed[0]!.task.id);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const code = await exited;
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('done');
    const theirs = lines.filter((l) => l.startsWith('claimed ')).map((l) => l.slice(8));

    expect(mine.length + theirs.length).toBe(TASKS);
    // Both processes really raced (each claimed a share).
    expect(mine.length).toBeGreaterThan(0);
    expect(theirs.length).toBeGreaterThan(0);
    expect(new Set(mine).size).toBe(mine.length);
    expect(new Set(theirs).size).toBe(theirs.length);
    expect(mine.filter((id) => theirs.includes(id))).toEqual([]);
    expect(new Set([...mine, ...theirs])).toEqual(new Set(tasks.map((t) => t.id)));

    // The store agrees: each task running once, under the claimer that reported it.
    const running = await store.listTasks({ states: ['running'], limit: 1_000 });
    expect(running).toHaveLength(TASKS);
    const owner = new Map(running.map((t) => [t.id, t.lease_owner]));
    expect(mine.every((id) => owner.get(id) === 'parent')).toBe(true);
    expect(theirs.every((id) => owner.get(id) === 'child')).toBe(true);
    expect(running.every((t) => t.attempts === 1)).toBe(true);
    // Claim events from both processes share one contiguous, valid chain.
    const events = await allEvents(store, session.id);
    expect(events).toHaveLength(TASKS);
    expect(findChainBreak(events)).toBeNull();
  });
});

describe('SQLite store: the audit log across connections and group commits', () => {
  it('a second OS process appending audit records: seq stays contiguous, the chain intact', async () => {
    const file = newFile();
    const store = await openStore({ file });
    const RECORDS = 200;
    const script = `
import { openSqliteStore } from ${JSON.stringify(pathToFileURL(STORE_MODULE).href)};
const store = await openSqliteStore({ file: process.env.WARDEN_TEST_DB });
const record = JSON.parse(process.env.WARDEN_TEST_RECORD);
for (let i = 0; i < ${RECORDS}; i++) {
  await store.commit([{ op: 'audit.append', records: [{ ...record, trace_id: 'child_' + i }] }]);
  if (i === 0) process.stdout.write('appending\\n');
  await new Promise((resolve) => setTimeout(resolve, 1)); // leave the lock to the other process
}
await store.close();
`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        ...process.env,
        WARDEN_TEST_DB: file,
        WARDEN_TEST_RECORD: JSON.stringify(auditRecord()),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    // Start once the child appends, so one side cannot finish before the other begins.
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      void exited.then((code) => reject(new Error(`child exited (${code}) early: ${stderr}`)));
    });
    for (let i = 0; i < RECORDS; i++) {
      await store.commit([
        { op: 'audit.append', records: [auditRecord({ trace_id: `parent_${i}` })] },
      ]);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await exited, stderr).toBe(0);

    const records = await store.readAudit({ limit: 10_000 });
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 2 * RECORDS }, (_, i) => i + 1));
    const traces = records.map((r) => r.trace_id);
    expect(traces.filter((t) => t.startsWith('child_'))).toHaveLength(RECORDS);
    expect(traces.filter((t) => t.startsWith('parent_'))).toHaveLength(RECORDS);
    expect(findAuditBreak(records)).toBeNull();
    expect(await store.verifyAudit()).toEqual({ ok: true, count: 2 * RECORDS });
  });

  it('strict group commit: a write refused inside the group leaves no record and no gap', async () => {
    const store = await openStore({ file: newFile(), durability: 'strict' });
    // Writes of one event-loop turn share a transaction, each in its own savepoint.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        store.commit([
          { op: 'audit.append', records: [auditRecord({ trace_id: `t${i}` })] },
          ...(i % 3 === 0 ? [{ op: 'grant.use' as const, id: 'g_missing', now: T0 }] : []),
        ]),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(20);
    expect(store.writeTransactions).toBeLessThan(30);
    const records = await store.readAudit();
    expect(records.map((r) => r.trace_id)).toEqual(
      Array.from({ length: 30 }, (_, i) => `t${i}`).filter((_, i) => i % 3 !== 0),
    );
    expect(await store.verifyAudit()).toEqual({ ok: true, count: 20 });
  });
});
