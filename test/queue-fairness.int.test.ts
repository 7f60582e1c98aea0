/** Round-robin across sessions within a lane: a busy session cannot starve a quiet one. */
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { ManualClock } from '../src/core/index.ts';
import { JobQueue } from '../src/queue/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

describe('fair queueing across sessions', () => {
  afterAll(removeTempDirs);

  it('interleaves a quiet session with a busy one that submitted first', async () => {
    const clock = new ManualClock();
    const store = await openSqliteStore({ file: join(tempDir(), 'q.db'), clock });
    try {
      const queue = new JobQueue({ store, clock });
      await queue.submitMany(
        Array.from({ length: 1_000 }, (_, i) => ({
          name: 'busy',
          payload: i,
          options: { session: 'busy' },
        })),
      );
      await queue.submitMany(
        Array.from({ length: 5 }, (_, i) => ({
          name: 'quiet',
          payload: i,
          options: { session: 'quiet' },
        })),
      );
      const claims = await store.claimTasks({
        lanes: ['default'],
        kinds: ['job'],
        workerId: 'w',
        limit: 10,
        leaseMs: 1_000,
        now: clock.now(),
      });
      const names = claims.map((c) => c.task.name);
      // Without fairness the first 1,000 claims would all be 'busy'.
      expect(names.filter((n) => n === 'quiet')).toHaveLength(5);
      expect(names.slice(0, 2).sort()).toEqual(['busy', 'quiet']);
      // FIFO within each session is kept.
      expect(claims.filter((c) => c.task.name === 'busy').map((c) => c.task.payload)).toEqual([
        0, 1, 2, 3, 4,
      ]);
      expect(claims.filter((c) => c.task.name === 'quiet').map((c) => c.task.payload)).toEqual([
        0, 1, 2, 3, 4,
      ]);
    } finally {
      await store.close();
    }
  });

  it('keeps priority within a busy session', async () => {
    const clock = new ManualClock();
    const store = await openSqliteStore({ file: join(tempDir(), 'q.db'), clock });
    try {
      const queue = new JobQueue({ store, clock });
      await queue.submitMany(
        Array.from({ length: 500 }, (_, i) => ({
          name: 'bulk',
          payload: i,
          options: { session: 's' },
        })),
      );
      await queue.submit('urgent', null, { session: 's', priority: 'realtime' });
      const [first] = await store.claimTasks({
        lanes: ['default'],
        kinds: ['job'],
        workerId: 'w',
        limit: 1,
        leaseMs: 1_000,
        now: clock.now(),
      });
      expect(first!.task.name).toBe('urgent');
    } finally {
      await store.close();
    }
  });
});
