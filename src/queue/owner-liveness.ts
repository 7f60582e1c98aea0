/**
 * Lease owners are named `<host>/<os pid>/<random>`. When the owner ran on this host and its
 * OS process is gone, its leases can be reclaimed at once instead of waiting for expiry; this
 * is what makes `warden resume` after a crash immediate. Owners on other hosts (or with ids in
 * another format) are left to lease expiry.
 */
import { hostname } from 'node:os';

export function localWorkerId(random: string): string {
  return `${hostname()}/${process.pid}/${random}`;
}

export function isDeadLocalOwner(owner: string): boolean {
  const [host, pidText] = owner.split('/');
  if (host !== hostname() || pidText === undefined) return false;
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
