/** Host integrity on real files: changes, deletions, creations, each reported once. */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { isWardenError, ManualClock, type WardenError } from '../src/core/index.ts';
import { hashFile, HostIntegrity, type IntegrityChange } from '../src/security/integrity.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection } from './helpers/wait.ts';

afterAll(removeTempDirs);

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

const running: HostIntegrity[] = [];
afterEach(() => {
  for (const watcher of running.splice(0)) watcher.stop();
});

function setup(files: Record<string, string | null>, options: { intervalMs?: number } = {}) {
  const dir = tempDir('warden-integrity-');
  const paths: Record<string, string> = {};
  for (const [name, content] of Object.entries(files)) {
    paths[name] = join(dir, name);
    if (content !== null) writeFileSync(paths[name], content);
  }
  const seen: IntegrityChange[] = [];
  const errors: WardenError[] = [];
  const clock = new ManualClock();
  const watcher = new HostIntegrity({
    files: Object.values(paths),
    onChange: (change) => seen.push(change),
    onError: (error) => errors.push(error),
    clock,
    ...options,
  });
  running.push(watcher);
  return { dir, paths, seen, errors, watcher, clock };
}

describe('HostIntegrity', () => {
  it('baseline hashes every file; a missing one is null', async () => {
    const { paths, watcher, seen, clock } = setup({ 'config.yaml': 'a: 1\n', 'policy.yaml': null });
    expect(watcher.lastCheckAt).toBeNull();
    expect(await watcher.baseline()).toEqual({
      [paths['config.yaml']!]: sha('a: 1\n'),
      [paths['policy.yaml']!]: null,
    });
    expect(watcher.lastCheckAt).toBe(clock.now());
    expect(seen).toEqual([]);
  });

  it('reports an edit, a deletion and a creation once each, then adopts them', async () => {
    const { paths, watcher, seen } = setup({ a: 'one', b: 'two', c: null });
    await watcher.baseline();
    expect(await watcher.check()).toEqual([]);

    writeFileSync(paths.a!, 'one, edited');
    unlinkSync(paths.b!);
    writeFileSync(paths.c!, 'three');
    const expected = [
      { path: paths.a, before: sha('one'), after: sha('one, edited') },
      { path: paths.b, before: sha('two'), after: null },
      { path: paths.c, before: null, after: sha('three') },
    ];
    expect(await watcher.check()).toEqual(expected);
    expect(seen).toEqual(expected);

    expect(await watcher.check()).toEqual([]); // reported once
    expect(seen).toHaveLength(3);

    writeFileSync(paths.a!, 'one'); // back to the original is a change again
    expect(await watcher.check()).toEqual([
      { path: paths.a, before: sha('one, edited'), after: sha('one') },
    ]);
  });

  it('an edit that keeps the size, an atomic replace, a symlink retarget, a directory', async () => {
    const { dir, paths, watcher } = setup({ a: 'abc', b: 'xyz', link: null, d: 'file' });
    const target1 = join(dir, 't1');
    const target2 = join(dir, 't2');
    writeFileSync(target1, 'target one');
    writeFileSync(target2, 'target two');
    symlinkSync(target1, paths.link!);
    await watcher.baseline();

    writeFileSync(paths.a!, 'abd');
    const tmp = join(dir, 'b.tmp');
    writeFileSync(tmp, 'xyz!');
    renameSync(tmp, paths.b!);
    unlinkSync(paths.link!);
    symlinkSync(target2, paths.link!);
    rmSync(paths.d!);
    mkdirSync(paths.d!);
    const changes = await watcher.check();
    expect(changes.map((c) => [c.path, c.after])).toEqual([
      [paths.a, sha('abd')],
      [paths.b, sha('xyz!')],
      [paths.link, sha('target two')],
      [paths.d, null],
    ]);
  });

  it('hashes at most maxFileBytes, folding in the size of a longer file', async () => {
    const dir = tempDir();
    const file = join(dir, 'big');
    writeFileSync(file, 'x'.repeat(100_000));
    expect(await hashFile(file, 1_000_000)).toBe(sha('x'.repeat(100_000)));
    const bounded = await hashFile(file, 10);
    expect(bounded).toBe(sha(`${'x'.repeat(10)}\0size:100000`));
    writeFileSync(file, 'x'.repeat(100_001));
    expect(await hashFile(file, 10)).not.toBe(bounded); // the size changed
    expect(await hashFile(join(dir, 'none'), 10)).toBeNull();
    expect(await hashFile(dir, 10)).toBeNull();
  });

  it('check() before baseline() is INVALID_STATE; options are checked', async () => {
    const { watcher } = setup({ a: 'x' });
    expect((await rejection(watcher.check())).code).toBe('INVALID_STATE');
    for (const bad of [
      { files: ['relative/path'], onChange: () => {} },
      { files: [], onChange: () => {} },
      { files: ['/abs'], onChange: 'no' },
      { files: ['/abs'], onChange: () => {}, intervalMs: 0 },
    ]) {
      let caught: unknown;
      try {
        new HostIntegrity(bad as never);
      } catch (error) {
        caught = error;
      }
      expect(isWardenError(caught, 'INVALID_PARAMS'), JSON.stringify(bad)).toBe(true);
    }
  });

  it('concurrent checks do not report a change twice', async () => {
    const { paths, watcher, seen } = setup({ a: 'x' });
    await watcher.baseline();
    writeFileSync(paths.a!, 'y');
    const results = await Promise.all([watcher.check(), watcher.check(), watcher.check()]);
    expect(results.map((r) => r.length)).toEqual([1, 0, 0]);
    expect(seen).toHaveLength(1);
  });

  it('a throwing listener goes to onError and the change is still adopted', async () => {
    const dir = tempDir();
    const file = join(dir, 'a');
    writeFileSync(file, 'x');
    const errors: WardenError[] = [];
    const watcher = new HostIntegrity({
      files: [file],
      onChange: () => {
        throw new Error('listener broke');
      },
      onError: (error) => errors.push(error),
    });
    await watcher.baseline();
    writeFileSync(file, 'y');
    expect(await watcher.check()).toHaveLength(1);
    expect(errors.map((e) => e.code)).toEqual(['INTERNAL']);
    expect(await watcher.check()).toEqual([]);
  });

  it('start() takes the baseline and reports a change on schedule; stop() ends it', async () => {
    const { paths, watcher, seen } = setup({ a: 'x' }, { intervalMs: 20 });
    watcher.start();
    watcher.start(); // idempotent
    const deadline = Date.now() + 10_000;
    while (watcher.lastCheckAt === null) {
      if (Date.now() > deadline) throw new Error('no baseline within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    writeFileSync(paths.a!, 'changed');
    while (seen.length === 0) {
      if (Date.now() > deadline) throw new Error('no change reported within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(seen).toEqual([{ path: paths.a, before: sha('x'), after: sha('changed') }]);
    watcher.stop();
    writeFileSync(paths.a!, 'after stop');
    // A check already running may still see this edit; either way it is reported exactly once.
    await watcher.check();
    expect(seen.slice(1)).toEqual([
      { path: paths.a, before: sha('changed'), after: sha('after stop') },
    ]);
    expect(seen).toHaveLength(2);
  });
});
