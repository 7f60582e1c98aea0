/**
 * A user the kernel holds to file permission bits, for tests of read-only files. Root ignores
 * the bits (a 0444 file stays writable for it), and CI may run the tests as root; there the
 * CLI runs as `nobody` instead, so those tests meet the real read-only condition either way.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, linkSync } from 'node:fs';
import { join } from 'node:path';

import { CLI, REPO } from './cli.ts';
import { tempDir } from './tmp.ts';

export interface ChildUser {
  readonly uid: number;
  readonly gid: number;
  /** A Node binary this user can execute (root's may sit in a directory closed to others). */
  readonly node: string;
  /**
   * A checkout this user can read: the repository itself, or (when it sits in a directory closed
   * to other users, e.g. a clone under a 0700 temp directory) a copy of what the CLI runs from.
   */
  readonly root: string;
}

function idOf(flag: '-u' | '-g'): number {
  try {
    return Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());
  } catch {
    return 65_534; // nobody / nogroup on most systems
  }
}

function runsCli(user: ChildUser): boolean {
  const result = spawnSync(user.node, [join(user.root, 'src/cli/main.ts'), '--version'], {
    cwd: user.root,
    uid: user.uid,
    gid: user.gid,
    encoding: 'utf8',
  });
  return result.status === 0;
}

/**
 * As root: `nobody`, with a Node binary it can run (a hard link or copy of this one in a
 * directory it can enter). Otherwise null: this user's own children already obey the bits.
 * Throws when root cannot give the CLI to another user (the repository is closed to it).
 */
export function unprivilegedUser(): ChildUser | null {
  if (process.getuid?.() !== 0) return null;
  const user = { uid: idOf('-u'), gid: idOf('-g'), node: process.execPath, root: REPO };
  if (runsCli(user)) return user;
  const dir = tempDir('warden-node-');
  chmodSync(dir, 0o755);
  const node = join(dir, 'node');
  try {
    linkSync(process.execPath, node);
  } catch {
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
  }
  const linked = { ...user, node };
  if (runsCli(linked)) return linked;
  const copied = { ...linked, root: readableCheckout(dir) };
  if (runsCli(copied)) return copied;
  throw new Error(
    `these tests run as root, and root ignores permission bits, so they run the CLI as uid ${user.uid} (nobody); it cannot run ${CLI} from ${REPO}, nor from a copy in ${dir}`,
  );
}

/** A copy of what the CLI runs from (sources, examples, production dependencies) under `dir`. */
function readableCheckout(dir: string): string {
  const root = join(dir, 'checkout');
  const parts = ['src', 'examples', 'package.json', 'tsconfig.json'];
  // Production dependencies only: what `src/cli/main.ts` loads, as npm resolved them.
  const deps = execFileSync('npm', ['ls', '--omit=dev', '--parseable', '--all'], {
    cwd: REPO,
    encoding: 'utf8',
  })
    .split('\n')
    .filter((line) => line.startsWith(join(REPO, 'node_modules')))
    .map((line) => line.slice(REPO.length).replace(/^\//, ''));
  for (const part of [...parts, ...deps])
    cpSync(join(REPO, part), join(root, part), { recursive: true, dereference: true });
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  return root;
}
