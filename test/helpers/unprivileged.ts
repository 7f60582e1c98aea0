/**
 * A user the kernel holds to file permission bits, for tests of read-only files. Root ignores
 * the bits (a 0444 file stays writable for it), and CI may run the tests as root; there the
 * CLI runs as `nobody` instead, so those tests meet the real read-only condition either way.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';

import { CLI, REPO } from './cli.ts';
import { tempDir } from './tmp.ts';

export interface ChildUser {
  readonly uid: number;
  readonly gid: number;
  /** A Node binary this user can execute (root's may sit in a directory closed to others). */
  readonly node: string;
}

function idOf(flag: '-u' | '-g'): number {
  try {
    return Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());
  } catch {
    return 65_534; // nobody / nogroup on most systems
  }
}

function runsCli(user: ChildUser): boolean {
  const result = spawnSync(user.node, [CLI, '--version'], {
    cwd: REPO,
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
  const user = { uid: idOf('-u'), gid: idOf('-g'), node: process.execPath };
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
  throw new Error(
    `these tests run as root, and root ignores permission bits, so they run the CLI as uid ${user.uid} (nobody); it cannot run ${CLI} from ${REPO}: make the checkout readable by other users`,
  );
}
