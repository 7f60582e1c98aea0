/**
 * Path guard (DESIGN.md §8): a path a tool wants to read, write or list must really be inside
 * one of the allowed roots, after every symlink and `..` is resolved the way the kernel
 * resolves them.
 *
 * Rules:
 * - NUL bytes, an empty path, and an empty list of (existing) roots are blocked.
 * - Roots are compared by their real paths, component-wise: `/srv/root` contains
 *   `/srv/root/a`, not `/srv/rootx`.
 * - A relative path resolves against `base` (default: the first root). The joined path is not
 *   normalised by string rules: `link/..` is the parent of the link's *target*, as for the
 *   kernel, so the real path is asked of the file system (realpath(3)).
 * - A path that does not exist yet (a write, or a read that will fail): the deepest existing
 *   ancestor is resolved; the missing components after it must not contain `..`, and a dangling
 *   symlink on the way is blocked (writing through it would create its target anywhere).
 *
 * Limits. This is a check, then a use: between the two, someone with write access inside the
 * root can swap a directory for a symlink (TOCTOU). {@link openNoFollow} closes the last
 * component (O_NOFOLLOW: a symlink there fails), not the directories above it; Node has no
 * openat2(RESOLVE_BENEATH). Run tools whose roots other users can write in a sandbox.
 * POSIX paths only; hard links to files outside the roots are not detected.
 */
import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';

import { z } from 'zod';

import { checkParams, param, WardenError } from '../../core/index.ts';

export const PATH_MODES = ['read', 'write', 'list'] as const;
export type PathMode = (typeof PATH_MODES)[number];

export interface ResolveInsideOptions {
  /** What the caller will do with the path (in messages and details). */
  mode: PathMode;
  /** Directory relative paths resolve against. @default the first root */
  base?: string;
}

/** Reason codes in `details.reasons` of a GUARD_BLOCKED error from {@link resolveInside}. */
export const PATH_BLOCK_REASONS = [
  'nul_byte',
  'empty_path',
  'no_roots',
  'outside_roots',
  'dotdot_escape',
  'symlink_escape',
  'dotdot_in_missing_part',
  'dangling_symlink',
  'unresolvable',
  'symlink_at_open',
] as const;
export type PathBlockReason = (typeof PATH_BLOCK_REASONS)[number];

const argsSchema = z.object({
  path: param.string('a path string'),
  roots: param.is<readonly string[]>(
    'an array of root directory paths',
    (v) => Array.isArray(v) && v.every((r) => typeof r === 'string'),
  ),
  options: param.options(
    { mode: param.oneOf(PATH_MODES), base: param.string('a directory path').optional() },
    "an options object { mode: 'read' | 'write' | 'list', base? }",
  ),
});

function blocked(reason: PathBlockReason, path: string, message: string): WardenError {
  return new WardenError('GUARD_BLOCKED', message, {
    details: { guard: 'path', reasons: [reason], path },
  });
}

const errno = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;

/** True when `p` is `root` or below it (compared with a separator: `/a` does not contain `/ab`). */
export function isInsideRoot(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The real absolute path of `path` if it lies inside one of `roots`, else GUARD_BLOCKED with
 * `details: {guard: 'path', reasons: [code], path}` (codes: {@link PATH_BLOCK_REASONS}).
 * Roots that do not exist are ignored. INVALID_PARAMS for arguments of the wrong type.
 */
export async function resolveInside(
  path: string,
  roots: readonly string[],
  options: ResolveInsideOptions,
): Promise<string> {
  checkParams('resolveInside', argsSchema, { path, roots, options });
  const { mode } = options;
  if (path.includes('\0') || options.base?.includes('\0') || roots.some((r) => r.includes('\0'))) {
    throw blocked(
      'nul_byte',
      path.replaceAll('\0', '\\0'),
      'path guard: the path contains a NUL byte; remove it',
    );
  }
  if (path === '')
    throw blocked(
      'empty_path',
      path,
      'path guard: the path is empty; name a file inside the allowed roots',
    );
  const real = await realRoots(roots);
  const first = real[0];
  if (first === undefined) {
    throw blocked(
      'no_roots',
      path,
      `path guard: no allowed root exists (${roots.length === 0 ? 'none configured' : roots.join(', ')}); add an existing directory to the policy's file roots`,
    );
  }
  const base =
    options.base === undefined
      ? first
      : isAbsolute(options.base)
        ? options.base
        : `${first}${sep}${options.base}`;
  // Joined as text, not normalised: `..` must be resolved after symlinks, by the file system.
  const joined = isAbsolute(path) ? path : `${base}${sep}${path}`;
  let target: string;
  try {
    target = await fsp.realpath(joined);
  } catch (error) {
    const code = errno(error);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') {
      throw blocked(
        'unresolvable',
        path,
        `path guard: cannot resolve '${path}' (${code ?? String(error)}); check the path and its permissions`,
      );
    }
    target = await resolveMissing(joined, path);
  }
  if (real.some((r) => isInsideRoot(target, r))) return target;
  const lexical = resolve(joined);
  const reason: PathBlockReason = real.some((r) => isInsideRoot(lexical, r))
    ? 'symlink_escape'
    : path.split(/[\\/]/).includes('..')
      ? 'dotdot_escape'
      : 'outside_roots';
  const why = reason === 'symlink_escape' ? ' through a symlink' : '';
  throw blocked(
    reason,
    path,
    `path guard: ${mode} of '${path}' resolves${why} to '${target}', outside the allowed roots (${real.join(', ')}); use a path inside them or add the directory to the policy's file roots`,
  );
}

async function realRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const root of roots) {
    try {
      const r = await fsp.realpath(resolve(root));
      if (!out.includes(r)) out.push(r);
    } catch {
      // A root that does not exist contains nothing.
    }
  }
  return out;
}

/** Real path of the deepest existing ancestor of `joined`, plus the missing components. */
async function resolveMissing(joined: string, path: string): Promise<string> {
  const parts = joined.split(sep);
  for (let i = parts.length; i >= 1; i--) {
    const prefix = parts.slice(0, i).join(sep) || sep;
    try {
      await fsp.lstat(prefix);
    } catch {
      continue;
    }
    let realPrefix: string;
    try {
      realPrefix = await fsp.realpath(prefix);
    } catch {
      throw blocked(
        'dangling_symlink',
        path,
        `path guard: '${prefix}' is a symlink to a missing target; writing through it could create a file anywhere`,
      );
    }
    const rest = parts.slice(i).filter((c) => c !== '' && c !== '.');
    if (rest.includes('..')) {
      throw blocked(
        'dotdot_in_missing_part',
        path,
        `path guard: '${path}' climbs with '..' through directories that do not exist; name the path without '..'`,
      );
    }
    return join(realPrefix, ...rest);
  }
  throw blocked('unresolvable', path, `path guard: no part of '${path}' exists`);
}

const OPEN_FLAGS = {
  r: constants.O_RDONLY,
  'r+': constants.O_RDWR,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  wx: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
} as const;

/**
 * Opens `path` (normally a result of {@link resolveInside}) with O_NOFOLLOW added, so a symlink
 * swapped in for the last component since the check makes the open fail (GUARD_BLOCKED,
 * reason `symlink_at_open`) instead of following it. Prefer `'wx'` for new files. Other
 * errors (ENOENT, EACCES…) are thrown as they are.
 */
export async function openNoFollow(
  path: string,
  flags: keyof typeof OPEN_FLAGS | number,
  mode = 0o666,
): Promise<FileHandle> {
  const bits = typeof flags === 'number' ? flags : OPEN_FLAGS[flags];
  try {
    return await fsp.open(path, bits | constants.O_NOFOLLOW, mode);
  } catch (error) {
    if (errno(error) === 'ELOOP' || errno(error) === 'EMLINK') {
      throw blocked(
        'symlink_at_open',
        path,
        `path guard: '${path}' became a symlink after it was checked; refusing to follow it`,
      );
    }
    throw error;
  }
}
