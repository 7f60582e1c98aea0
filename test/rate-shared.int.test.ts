/**
 * Rate limits that must hold across processes live in the store (issue 6, defect 5): two
 * kernels on one database share the per-user run.start windows, and a refused start changes
 * nothing (no process, no session, no event).
 */
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { buildWorkflow, isWardenError, ManualClock } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const workflow = buildWorkflow({
  name: 'rate',
  model: 'scripted',
  stages: [{ name: 'only', agent: { kind: 'noop' } }],
});
const limits = { per_minute: 3, per_hour: 100, per_day: 1_000, burst: 10 };

describe('shared rate limits', () => {
  afterAll(removeTempDirs);

  it('two kernels on one database count against the same windows', async () => {
    const file = join(tempDir(), 'rate.db');
    const clock = new ManualClock();
    const stores: Store[] = [
      await openSqliteStore({ file, clock }),
      await openSqliteStore({ file, clock }),
    ];
    try {
      const [a, b] = stores.map((store) => new Kernel({ store, clock, rateLimits: limits })) as [
        Kernel,
        Kernel,
      ];
      await a.startRun({ workflow, userId: 'ann' });
      await b.startRun({ workflow, userId: 'ann' });
      await a.startRun({ workflow, userId: 'ann' });
      const sessionsBefore = (await stores[0]!.listSessions()).length;
      const refused = await b.startRun({ workflow, userId: 'ann', sessionKey: 'fresh' }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(isWardenError(refused, 'RATE_LIMITED')).toBe(true);
      expect((refused as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
      // Nothing of the refused start exists: no session, no process.
      expect((await stores[1]!.listSessions()).length).toBe(sessionsBefore);
      expect(await stores[1]!.getSessionByKey('fresh')).toBeUndefined();
      expect(await stores[1]!.listProcesses()).toHaveLength(3);
      // Every kernel's status shows the shared count.
      expect((await a.status()).rate_limits['user:ann:run.start']).toBe(3);
      // Another user has their own windows; a minute later ann may start again.
      await b.startRun({ workflow, userId: 'bob' });
      clock.advance(61_000);
      await b.startRun({ workflow, userId: 'ann', sessionKey: 'fresh' });
      expect(await stores[0]!.getSessionByKey('fresh')).toBeDefined();
    } finally {
      for (const store of stores) await store.close();
    }
  });
});
