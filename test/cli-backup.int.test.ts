/**
 * `warden backup` and `warden restore` through the real CLI: a backup taken while another
 * process keeps committing is the database at one instant; a restore brings back exactly the
 * state that was backed up and keeps the database it replaces; restores are refused while a
 * daemon runs or another process has the database open, and for a newer or damaged source.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { writeDaemonFile } from '../src/cli/daemon-file.ts';
import { IdGenerator, systemClock } from '../src/core/index.ts';
import { verifyLedger } from '../src/kernel/index.ts';
import { openSqliteStore, SessionDirectory, SQLITE_SCHEMA_VERSION } from '../src/store/index.ts';
import { killChildren, moduleUrl, spawnModule } from './helpers/child.ts';
import { initHomeWithKernel, json, runCli } from './helpers/cli.ts';
import { editEventData } from './helpers/event-tamper.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const APPENDER = fileURLToPath(new URL('./helpers/event-appender.ts', import.meta.url));
const FLOW = 'examples/review-loop.yaml';

const appenders: ChildProcess[] = [];

function startAppender(db: string, sessionIds: readonly string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [APPENDER, db, ...sessionIds], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    appenders.push(child);
    child.on('error', reject);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (chunk.includes('ready')) resolve(child);
    });
  });
}

async function stopAppenders(): Promise<void> {
  for (const child of appenders.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

/** `warden init` and one run that stops at its first question. */
async function homeWithRun(): Promise<string> {
  const home = tempDir();
  expect((await runCli(['init'], { home })).code).toBe(0);
  await startRun(home, 'first');
  return home;
}

async function startRun(home: string, topic: string): Promise<void> {
  const run = await runCli(
    ['run', FLOW, '--input', JSON.stringify({ topic }), '--no-interactive'],
    { home },
  );
  expect(run.code, run.stderr).toBe(4); // waiting for a person: state worth restoring
}

/** Everything a home holds that a user can see: runs, tasks, interrupts, sessions, events. */
async function state(home: string): Promise<unknown> {
  const store = await openSqliteStore({ file: join(home, 'warden.db'), mustExist: true });
  try {
    const sessions = await store.listSessions();
    const events = [];
    for (const s of sessions)
      events.push(await store.readEvents({ sessionId: s.id, limit: 10_000 }));
    const ledger = await verifyLedger(store);
    expect(ledger.ok).toBe(true);
    return {
      processes: await store.listProcesses(),
      tasks: await store.listTasks(),
      interrupts: await store.listInterrupts(),
      sessions,
      events,
      ledger,
    };
  } finally {
    await store.close(); // restore refuses while any process has the database open
  }
}

interface BackupJson {
  file: string;
  bytes: number;
  schema_version: number;
  integrity: string;
  sessions: number;
  events: number;
  ledger_ok: boolean;
}

describe('warden backup', { timeout: 180_000 }, () => {
  afterEach(async () => {
    await stopAppenders();
    await killChildren();
  });
  afterAll(removeTempDirs);

  it('copies the database as of one instant while another process keeps committing', async () => {
    const home = tempDir();
    const db = join(home, 'warden.db');
    const { store, close } = await initHomeWithKernel(home);
    const directory = new SessionDirectory(store, new IdGenerator(systemClock), systemClock);
    const ids: string[] = [];
    for (const key of ['s1', 's2', 's3']) ids.push((await directory.ensure(key)).id);
    const base = new Map<string, number>();
    for (const id of ids) base.set(id, (await store.getSession(id))!.last_seq);
    await close();
    await startAppender(db, ids);

    for (const round of [1, 2]) {
      const file = join(home, `backup-${round}.db`);
      const result = await runCli(['backup', file, '--json'], { home });
      expect(result.code, result.stderr).toBe(0);
      const summary = json<BackupJson>(result);
      expect(summary).toMatchObject({
        file,
        integrity: 'ok',
        ledger_ok: true,
        schema_version: SQLITE_SCHEMA_VERSION,
      });
      expect(summary.bytes).toBe(statSync(file).size);
      expect(statSync(file).mode & 0o777).toBe(0o600);

      // The appender's iteration i commits one event to every session, then one more to
      // session i % 3. A copy of one instant holds a such commits and b singles, b ∈ {a-1, a},
      // with each session's count following from them; a torn copy would not fit.
      const copy = await openSqliteStore({ file, mustExist: true, intent: 'read' });
      const counts: number[] = [];
      let total = 0;
      for (const id of ids) {
        const session = (await copy.getSession(id))!;
        counts.push(session.last_seq - base.get(id)!);
        total += session.last_seq;
      }
      await copy.close();
      const added = counts.reduce((n, c) => n + c, 0);
      const a = Math.ceil(added / 4);
      const b = added - 3 * a;
      expect(a).toBeGreaterThan(0);
      expect([a - 1, a]).toContain(b);
      expect(counts).toEqual(
        ids.map(
          (_, j) => a + Array.from({ length: b }, (_, i) => i).filter((i) => i % 3 === j).length,
        ),
      );
      expect(summary.events).toBeGreaterThanOrEqual(total);
    }
    // The writer kept going through both backups.
    expect(appenders[0]!.exitCode).toBeNull();
  });

  it('refuses to replace a file unless --force, and bad destinations', async () => {
    const home = await homeWithRun();
    const file = join(home, 'b.db');
    writeFileSync(file, 'precious');
    const refused = await runCli(['backup', file, '--json'], { home });
    expect(refused.code).toBe(2);
    expect(json<{ error: { code: string } }>(refused).error.code).toBe('INVALID_PARAMS');
    expect(refused.stderr).toContain('--force');
    expect(readFileSync(file, 'utf8')).toBe('precious');

    const forced = await runCli(['backup', file, '--force'], { home });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('ledger ok');
    expect(readFileSync(file).subarray(0, 15).toString()).toBe('SQLite format 3');

    const noDir = await runCli(['backup', join(home, 'missing', 'b.db')], { home });
    expect(noDir.code).toBe(5);
    expect(noDir.stderr).toContain('does not exist');
    const dir = await runCli(['backup', home], { home });
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain('is a directory');
    const itself = await runCli(['backup', join(home, 'warden.db'), '--force'], { home });
    expect(itself.code).toBe(2);
    expect(itself.stderr).toContain('the database itself');
    const noDb = await runCli(['backup', join(home, 'x.db')], { home: tempDir() });
    expect(noDb.code).toBe(5);
    // No temp files are left behind by any of these.
    expect(readdirSync(home).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});

describe('warden restore', { timeout: 180_000 }, () => {
  afterEach(killChildren);
  afterAll(removeTempDirs);

  it('brings back the state at the backup and keeps the database it replaces', async () => {
    const home = await homeWithRun();
    const file = join(home, 'b.db');
    expect((await runCli(['backup', file], { home })).code).toBe(0);
    const atBackup = await state(home);
    await startRun(home, 'second');
    expect(await state(home)).not.toEqual(atBackup);

    const restored = await runCli(['restore', file, '--json'], { home });
    expect(restored.code, restored.stderr).toBe(0);
    const result = json<{ kept: string[]; ledger_ok: boolean }>(restored);
    expect(result.ledger_ok).toBe(true);
    expect(await state(home)).toEqual(atBackup);

    // The replaced database is one file holding both runs; nothing stale is beside the new one.
    expect(result.kept).toHaveLength(1);
    expect(result.kept[0]).toMatch(/warden\.db\.before-restore-\d{8}T\d{6}Z$/);
    const kept = new Database(result.kept[0], { readonly: true });
    expect(kept.prepare('SELECT count(*) AS n FROM processes').get()).toEqual({ n: 2 });
    kept.close();
    expect(existsSync(join(home, 'warden.db-wal'))).toBe(false);
    // The backup file itself is unchanged and can be restored again.
    const again = await runCli(['restore', file], { home });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('kept the previous database as');
  });

  it('is refused while a daemon runs on the home, and goes ahead once it is gone', async () => {
    const home = await homeWithRun();
    const file = join(home, 'b.db');
    expect((await runCli(['backup', file], { home })).code).toBe(0);
    const daemon = spawnModule('console.log("up"); setInterval(() => {}, 1000);');
    await daemon.line((l) => l === 'up', 'fake daemon');
    const url = 'ws://127.0.0.1:7421/acp';
    writeDaemonFile(home, {
      pid: daemon.pid,
      url,
      started_at: Date.now(),
      version: '0.1.0',
      database: join(home, 'warden.db'),
    });
    const before = readFileSync(join(home, 'warden.db'));
    const refused = await runCli(['restore', file, '--json'], { home });
    expect(refused.code).toBe(8);
    expect(json<{ error: unknown }>(refused).error).toMatchObject({
      code: 'DAEMON_RUNNING',
      details: { pid: daemon.pid, url },
    });
    expect(readFileSync(join(home, 'warden.db')).equals(before)).toBe(true);

    await daemon.kill(); // SIGKILL: daemon.json stays behind, naming a dead pid
    const restored = await runCli(['restore', file], { home });
    expect(restored.code, restored.stderr).toBe(0);
    expect(existsSync(join(home, 'daemon.json'))).toBe(false);
    expect(existsSync(join(home, 'daemon.lock'))).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'is refused while another process has the database open',
    async () => {
      const home = await homeWithRun();
      const file = join(home, 'b.db');
      expect((await runCli(['backup', file], { home })).code).toBe(0);
      const holder = spawnModule(`
        import { openSqliteStore } from ${JSON.stringify(moduleUrl('src/store/index.ts'))};
        await openSqliteStore({ file: ${JSON.stringify(join(home, 'warden.db'))} });
        console.log('open');
        setInterval(() => {}, 1000);
      `);
      await holder.line((l) => l === 'open', 'the store opening');
      const refused = await runCli(['restore', file], { home });
      expect(refused.code).toBe(6);
      expect(refused.stderr).toContain(`is open in process ${holder.pid}`);
      expect(readdirSync(home).filter((f) => f.includes('before-restore'))).toEqual([]);
    },
  );

  it('refuses a source from a newer Warden, a damaged ledger or a file that is not a database', async () => {
    const home = await homeWithRun();
    const atStart = await state(home);

    const newer = join(home, 'newer.db');
    expect((await runCli(['backup', newer], { home })).code).toBe(0);
    const n = new Database(newer);
    n.pragma('user_version = 99');
    n.close();
    const tooNew = await runCli(['restore', newer, '--json'], { home });
    expect(tooNew.code).toBe(6);
    expect(json<{ error: { code: string } }>(tooNew).error.code).toBe('STORE_TOO_NEW');

    const tampered = join(home, 'tampered.db');
    expect((await runCli(['backup', tampered], { home })).code).toBe(0);
    const t = new Database(tampered);
    const main = t.prepare("SELECT id FROM sessions WHERE key = 'main'").get() as { id: string };
    editEventData(t, main.id, 2, '{"forged":true}');
    t.close();
    const broken = await runCli(['restore', tampered], { home });
    expect(broken.code).toBe(7);
    expect(broken.stderr).toContain('LEDGER_BROKEN');

    const text = join(home, 'notes.txt');
    writeFileSync(text, 'not a database at all, just some text that is long enough '.repeat(4));
    const notDb = await runCli(['restore', text], { home });
    expect(notDb.code).toBe(6);
    expect(notDb.stderr).toContain('STORE_CORRUPT');

    const missing = await runCli(['restore', join(home, 'nope.db')], { home });
    expect(missing.code).toBe(5);

    // Nothing was replaced, nothing set aside, no temp files left.
    expect(await state(home)).toEqual(atStart);
    expect(readdirSync(home).filter((f) => /before-restore|\.tmp/.test(f))).toEqual([]);
  });
});
