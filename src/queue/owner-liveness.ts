/**
 * Lease owners are named `<host>/<os pid>/<random>/<namespace>`. When the owner ran on this
 * host, in this PID namespace and this boot, and its OS process is gone, its leases can be
 * reclaimed at once instead of waiting for expiry; this is what makes `warden resume` after a
 * crash immediate.
 *
 * `<namespace>` identifies the boot and the PID namespace (`/proc/sys/kernel/random/boot_id` and
 * `/proc/self/ns/pid`): two containers with the same hostname, or a process from before a
 * reboot, can reuse the same PID, so a PID alone says nothing about a process we cannot see.
 * Owners from another host, namespace or boot — or in another format — are left to lease
 * expiry, which is always safe.
 *
 * Remote workers (over ACP) are named `remote/<name>/<random>` ({@link remoteWorkerId}): no
 * process of ours can vouch for them, so only their lease expiry ever takes their work back.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** A short identity of this boot and PID namespace ('-' where /proc cannot tell). */
export const LOCAL_NAMESPACE = (() => {
  let boot = '';
  let pidNs = '';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // not Linux, or /proc hidden
  }
  try {
    pidNs = readlinkSync('/proc/self/ns/pid');
  } catch {
    // not Linux, or /proc hidden
  }
  if (boot === '' || pidNs === '') return '-';
  return createHash('sha256').update(`${boot}\n${pidNs}`).digest('hex').slice(0, 12);
})();

export function localWorkerId(random: string): string {
  return `${hostname()}/${process.pid}/${random}/${LOCAL_NAMESPACE}`;
}

/** The prefix of every remote worker id. */
export const REMOTE_OWNER_PREFIX = 'remote/';

/** A remote worker's owner id is `remote/<name>/<random>`: exactly three `/`-separated parts. */
export const REMOTE_OWNER_PATTERN = /^remote\/[A-Za-z0-9_.:-]{1,64}\/[A-Za-z0-9_-]{1,64}$/;

/**
 * A lease owner id for a remote worker: `remote/<name>/<random>`, the name cut to 64 characters
 * of letters, digits, `_ . : -` (anything else becomes `-`), so it never has the four parts of
 * a local owner and {@link isDeadLocalOwner} never judges it.
 */
export function remoteWorkerId(name: string, random: string): string {
  const clean = name.replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 64) || 'worker';
  const suffix = random.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64) || '0';
  return `${REMOTE_OWNER_PREFIX}${clean}/${suffix}`;
}

export function isDeadLocalOwner(owner: string): boolean {
  // A remote worker's liveness is its lease: never reclaim it early (its three parts would
  // fail the check below anyway; this says why, and holds if the local format changes).
  if (REMOTE_OWNER_PATTERN.test(owner)) return false;
  const parts = owner.split('/');
  if (parts.length !== 4) return false;
  const [host, pidText, , namespace] = parts;
  // Without a namespace identity we cannot know whether the PID is ours to judge.
  if (host !== hostname() || namespace !== LOCAL_NAMESPACE || LOCAL_NAMESPACE === '-') return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
