import { mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isWardenError } from '../src/core/index.ts';
import {
  isInsideRoot,
  openNoFollow,
  type PathMode,
  resolveInside,
} from '../src/security/guards/path-guard.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

let top: string;
let root: string;
let outside: string;

beforeAll(() => {
  top = realpathSync(tempDir('warden-path-guard-'));
  root = join(top, 'root');
  outside = join(top, 'outside');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(outside);
  mkdirSync(join(top, 'rootx'));
  writeFileSync(join(root, 'a.txt'), 'a');
  writeFileSync(join(root, 'sub', 'b.txt'), 'b');
  writeFileSync(join(outside, 'secret.txt'), 'secret');
  writeFileSync(join(top, 'rootx', 'f.txt'), 'x');
  symlinkSync(join(root, 'sub'), join(root, 'inLink'));
  symlinkSync(outside, join(root, 'outLink'));
  symlinkSync(join(outside, 'secret.txt'), join(root, 'secretLink'));
  symlinkSync(join(top, 'missing-dir', 'new.txt'), join(root, 'dangling'));
  symlinkSync(root, join(top, 'rootAlias'));
});

afterAll(removeTempDirs);

async function blockedReason(
  path: string,
  mode: PathMode = 'read',
  roots = [root],
): Promise<unknown> {
  try {
    await resolveInside(path, roots, { mode });
  } catch (e) {
    if (isWardenError(e) && e.code === 'GUARD_BLOCKED') {
      expect(e.details?.guard).toBe('path');
      expect(typeof e.details?.path).toBe('string');
      return (e.details?.reasons as string[])[0];
    }
    throw e;
  }
  return 'allowed';
}

describe('resolveInside', () => {
  it('returns the real path of files inside the root, relative or absolute', async () => {
    expect(await resolveInside('a.txt', [root], { mode: 'read' })).toBe(join(root, 'a.txt'));
    expect(await resolveInside(join(root, 'sub', 'b.txt'), [root], { mode: 'read' })).toBe(
      join(root, 'sub', 'b.txt'),
    );
    expect(await resolveInside('sub/../a.txt', [root], { mode: 'read' })).toBe(join(root, 'a.txt'));
    expect(await resolveInside('.', [root], { mode: 'list' })).toBe(root);
    expect(await resolveInside('b.txt', [root], { mode: 'read', base: 'sub' })).toBe(
      join(root, 'sub', 'b.txt'),
    );
  });

  it('follows symlinks that stay inside and returns the target', async () => {
    expect(await resolveInside('inLink/b.txt', [root], { mode: 'read' })).toBe(
      join(root, 'sub', 'b.txt'),
    );
    expect(await resolveInside('inLink/new.txt', [root], { mode: 'write' })).toBe(
      join(root, 'sub', 'new.txt'),
    );
  });

  it('blocks .. escapes and paths outside the roots', async () => {
    expect(await blockedReason('../outside/secret.txt')).toBe('dotdot_escape');
    expect(await blockedReason(join(outside, 'secret.txt'))).toBe('outside_roots');
    expect(await blockedReason('/etc/passwd')).toBe('outside_roots');
  });

  it('compares roots by path component: /root does not contain /rootx', async () => {
    expect(await blockedReason(join(top, 'rootx', 'f.txt'))).toBe('outside_roots');
    expect(await blockedReason('../rootx/f.txt')).toBe('dotdot_escape');
    expect(isInsideRoot('/srv/root/a', '/srv/root')).toBe(true);
    expect(isInsideRoot('/srv/rootx', '/srv/root')).toBe(false);
    expect(isInsideRoot('/srv', '/')).toBe(true);
  });

  it('blocks symlinks that point outside, also when .. follows the link', async () => {
    expect(await blockedReason('outLink/secret.txt')).toBe('symlink_escape');
    expect(await blockedReason('secretLink')).toBe('symlink_escape');
    expect(await blockedReason('outLink/new.txt', 'write')).toBe('symlink_escape');
    // String normalisation would say root/a.txt; the kernel goes to outside/../a.txt.
    expect(await blockedReason('outLink/../a.txt')).toBe('symlink_escape');
  });

  it('writes: resolves the deepest existing ancestor, refuses .. and dangling symlinks in the missing part', async () => {
    expect(await resolveInside('new/dir/file.txt', [root], { mode: 'write' })).toBe(
      join(root, 'new', 'dir', 'file.txt'),
    );
    expect(await blockedReason('missing/../../outside/x', 'write')).toBe('dotdot_in_missing_part');
    expect(await blockedReason('dangling', 'write')).toBe('dangling_symlink');
  });

  it('realpaths the roots and accepts several', async () => {
    expect(await resolveInside('a.txt', [join(top, 'rootAlias')], { mode: 'read' })).toBe(
      join(root, 'a.txt'),
    );
    expect(
      await resolveInside(join(outside, 'secret.txt'), [root, outside], { mode: 'read' }),
    ).toBe(join(outside, 'secret.txt'));
  });

  it('blocks NUL bytes, empty paths and missing roots', async () => {
    expect(await blockedReason('a.txt\0.png')).toBe('nul_byte');
    expect(await blockedReason('')).toBe('empty_path');
    expect(await blockedReason('a.txt', 'read', [])).toBe('no_roots');
    expect(await blockedReason('a.txt', 'read', [join(top, 'nope')])).toBe('no_roots');
  });

  it('rejects arguments of the wrong type with INVALID_PARAMS', async () => {
    await expect(resolveInside('a', [root], { mode: 'delete' as PathMode })).rejects.toSatisfy(
      (e: unknown) => isWardenError(e) && e.code === 'INVALID_PARAMS',
    );
  });
});

describe('openNoFollow', () => {
  it('opens regular files and refuses a symlink as the last component', async () => {
    const file = await resolveInside('written.txt', [root], { mode: 'write' });
    const fh = await openNoFollow(file, 'wx');
    await fh.writeFile('ok');
    await fh.close();
    expect(readFileSync(file, 'utf8')).toBe('ok');
    await expect(openNoFollow(join(root, 'secretLink'), 'r')).rejects.toSatisfy(
      (e: unknown) => isWardenError(e) && e.code === 'GUARD_BLOCKED',
    );
  });
});
