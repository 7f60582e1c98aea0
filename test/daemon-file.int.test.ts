/**
 * The daemon discovery file and the exclusive-run lock (src/cli/daemon-file.ts), with real
 * processes: a live holder refuses others, a SIGKILLed one is taken over, and of several
 * processes racing to take over one stale lock exactly one wins.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  acquireDaemonLock,
  DAEMON_LOCK_FILE,
  type DaemonInfo,
  isProcessAlive,
  readDaemonFile,
  readRunningDaemon,
  removeDaemonFile,
  writeDaemonFile,
} from '../src/cli/daemon-file.ts';
import { isWardenError } from '../src/core/index.ts';
import { killChildren, moduleUrl, spawnModule } from './helpers/child.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const DAEMON_FILE_MODULE = moduleUrl('src/cli/daemon-file.ts');

function info(pid: number, home: string): DaemonInfo {
  return {
    pid,
    url: 'ws://127.0.0.1:7421/acp',
    started_at: Date.now(),
    version: '0.1.0',
    database: join(home, 'warden.db'),
  };
}

/** A pid that was alive and is not any more (a child that exited). */
async function deadPid(): Promise<number> {
  const child = spawnModule('');
  await child.exited;
  return child.pid;
}

/** A child that takes the lock (at `startAt` ms since the epoch, busy-waiting) and stays alive. */
function lockHolder(home: string, startAt = 0) {
  return spawnModule(`
    import { acquireDaemonLock } from ${JSON.stringify(DAEMON_FILE_MODULE)};
    while (Date.now() < ${startAt}) {}
    try {
      acquireDaemonLock(${JSON.stringify(home)});
      console.log('locked');
    } catch (e) {
      console.log('refused ' + e.code);
    }
    setInterval(() => {}, 1000);
  `);
}

describe('daemon.json', () => {
  afterEach(killChildren);
  afterAll(removeTempDirs);

  it('is written whole with mode 0600, read while its pid lives, removed only by that pid', () => {
    const home = tempDir();
    const mine = info(process.pid, home);
    writeDaemonFile(home, mine);
    const file = join(home, 'daemon.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(mine);
    expect(readRunningDaemon(home)).toEqual(mine);
    expect(removeDaemonFile(home, process.pid + 1)).toBe(false);
    expect(existsSync(file)).toBe(true);
    expect(removeDaemonFile(home, process.pid)).toBe(true);
    expect(existsSync(file)).toBe(false);
    expect(readRunningDaemon(home)).toBeNull();
  });

  it('names a SIGKILLed daemon: ignored and removed', async () => {
    const home = tempDir();
    const child = spawnModule('console.log("up"); setInterval(() => {}, 1000);');
    await child.line((l) => l === 'up', 'child start');
    writeDaemonFile(home, info(child.pid, home));
    expect(readRunningDaemon(home)?.pid).toBe(child.pid);
    await child.kill();
    expect(isProcessAlive(child.pid)).toBe(false);
    expect(readRunningDaemon(home)).toBeNull();
    expect(existsSync(join(home, 'daemon.json'))).toBe(false);
  });

  it('that is not JSON reads as no daemon', () => {
    const home = tempDir();
    writeFileSync(join(home, 'daemon.json'), '{"pid": 12');
    expect(readDaemonFile(home)).toBeNull();
    expect(readRunningDaemon(home)).toBeNull();
  });
});

describe('the daemon lock', () => {
  afterEach(killChildren);
  afterAll(removeTempDirs);

  it('refuses while a live process holds it, and is taken over once that process is SIGKILLed', async () => {
    const home = tempDir();
    const holder = lockHolder(home);
    await holder.line((l) => l === 'locked', 'the child taking the lock');
    writeDaemonFile(home, info(holder.pid, home));
    let refused: unknown;
    try {
      acquireDaemonLock(home);
    } catch (error) {
      refused = error;
    }
    expect(isWardenError(refused, 'DAEMON_RUNNING')).toBe(true);
    expect((refused as { details: unknown }).details).toMatchObject({
      pid: holder.pid,
      url: 'ws://127.0.0.1:7421/acp',
      purpose: 'serve',
    });

    await holder.kill();
    const lock = acquireDaemonLock(home);
    const file = join(home, DAEMON_LOCK_FILE);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Another process now sees this (live) process as the holder.
    const other = lockHolder(home);
    await other.line((l) => l.startsWith('refused'), 'the second child');
    expect(other.lines).toContain('refused DAEMON_RUNNING');
    lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it('does not release a lock that was taken over from it', () => {
    const home = tempDir();
    const lock = acquireDaemonLock(home);
    const file = join(home, DAEMON_LOCK_FILE);
    const theirs = JSON.stringify({ pid: 1, purpose: 'serve', acquired_at: 1 });
    writeFileSync(file, theirs);
    lock.release();
    expect(readFileSync(file, 'utf8')).toBe(theirs);
  });

  it('names a restore as the holder when a restore holds it', async () => {
    const home = tempDir();
    const child = spawnModule(`
      import { acquireDaemonLock } from ${JSON.stringify(DAEMON_FILE_MODULE)};
      acquireDaemonLock(${JSON.stringify(home)}, 'restore');
      console.log('locked');
      setInterval(() => {}, 1000);
    `);
    await child.line((l) => l === 'locked', 'the child taking the lock');
    expect(() => acquireDaemonLock(home)).toThrow(/warden restore \(pid \d+\)/);
  });

  it('lets exactly one of several processes racing for a stale lock win', async () => {
    const home = tempDir();
    const stale = await deadPid();
    writeFileSync(
      join(home, DAEMON_LOCK_FILE),
      JSON.stringify({ pid: stale, purpose: 'serve', acquired_at: 1 }),
    );
    const startAt = Date.now() + 1_500; // every child is up and spinning by then
    const children = Array.from({ length: 5 }, () => lockHolder(home, startAt));
    for (const child of children)
      await child.line((l) => l === 'locked' || l.startsWith('refused'), 'a racer');
    const outcomes = children.map((c) => c.lines[0]);
    expect(outcomes.filter((o) => o === 'locked')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'refused DAEMON_RUNNING')).toHaveLength(4);
    const winner = children[outcomes.indexOf('locked')]!;
    expect(JSON.parse(readFileSync(join(home, DAEMON_LOCK_FILE), 'utf8'))).toMatchObject({
      pid: winner.pid,
    });
  });
});
