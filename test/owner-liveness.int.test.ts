/** Dead-owner detection must never declare a process dead that it cannot see. */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';

import { describe, expect, it } from 'vitest';

import { isDeadLocalOwner, LOCAL_NAMESPACE, localWorkerId } from '../src/queue/owner-liveness.ts';

/** The PID of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], {
    encoding: 'utf8',
  });
  return Number(child.stdout.trim());
}

describe('isDeadLocalOwner', () => {
  it('a dead process of this host, boot and PID namespace is dead', () => {
    expect(LOCAL_NAMESPACE).not.toBe('-');
    expect(isDeadLocalOwner(`${hostname()}/${deadPid()}/abc/${LOCAL_NAMESPACE}`)).toBe(true);
  });

  it('a live one is not, and this process never is', () => {
    expect(isDeadLocalOwner(localWorkerId('me'))).toBe(false);
    expect(isDeadLocalOwner(`${hostname()}/1/abc/${LOCAL_NAMESPACE}`)).toBe(false);
  });

  it('the same host name in another PID namespace (a container) or boot is left to expiry', () => {
    const pid = deadPid();
    expect(isDeadLocalOwner(`${hostname()}/${pid}/abc/0123456789ab`)).toBe(false);
    // Owners recorded without a namespace identity cannot be judged either.
    expect(isDeadLocalOwner(`${hostname()}/${pid}/abc`)).toBe(false);
    expect(isDeadLocalOwner(`other-host/${pid}/abc/${LOCAL_NAMESPACE}`)).toBe(false);
  });
});
