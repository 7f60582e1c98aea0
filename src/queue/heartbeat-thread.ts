/**
 * The heartbeat thread: renews the leases of the tasks its parent is running, on its own event
 * loop and its own database connection, so a handler that blocks the parent's event loop cannot
 * starve the renewals. It renews only while the parent keeps ticking: a parent stalled for
 * longer than `stallLimitMs` is treated as dead, its leases lapse, and its late completions will
 * be rejected by the lease fence.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { openSqliteStore } from '../store/index.ts';
import type { HeartbeatThreadData, ToHeartbeatThread } from './heartbeat-protocol.ts';

const data = workerData as HeartbeatThreadData;
const port = parentPort!;
const store = await openSqliteStore({
  file: data.file,
  durability: data.durability,
  mustExist: true,
});
const tracked = new Map<string, string>();
/** The parent's clock at its last tick, and this thread's monotonic time then. */
let parentNow = data.now;
let lastTick = performance.now();
let stalled = false;

/** The parent's clock, advanced by the monotonic time since its last tick. */
function now(): number {
  return parentNow + Math.round(performance.now() - lastTick);
}

port.on('message', handle);

function handle(message: ToHeartbeatThread): void {
  switch (message.op) {
    case 'batch': {
      const changes = message.changes;
      for (let i = 0; i < changes.length;) {
        if (changes[i] === '+') {
          tracked.set(changes[i + 1]!, changes[i + 2]!);
          i += 3;
        } else {
          tracked.delete(changes[i + 1]!);
          i += 2;
        }
      }
      break;
    }
    case 'track':
      tracked.set(message.id, message.token);
      break;
    case 'untrack':
      tracked.delete(message.id);
      break;
    case 'tick':
      parentNow = message.now;
      lastTick = performance.now();
      stalled = false;
      break;
    case 'stop':
      clearInterval(timer);
      clearInterval(checkpoints);
      void store.close().then(() => port.close());
      break;
  }
}

// Background checkpoints: the writers' connections never checkpoint inside a commit.
// Often enough that the writer's own bound (see SqliteStore #boundWal) finds little left to copy.
const checkpoints = setInterval(() => store.checkpoint('PASSIVE'), 100);

const timer = setInterval(() => {
  if (tracked.size === 0) return;
  if (performance.now() - lastTick > data.stallLimitMs) {
    if (!stalled) port.postMessage({ op: 'stalled', since: parentNow });
    stalled = true;
    return; // let the leases lapse: the parent is not making progress
  }
  const items = [...tracked].map(([id, leaseToken]) => ({ id, leaseToken }));
  store.heartbeatTasks(items, data.leaseMs, now()).then(
    (lost) => {
      if (lost.length === 0) return;
      for (const id of lost) tracked.delete(id);
      port.postMessage({ op: 'lost', ids: lost });
    },
    (error: unknown) =>
      port.postMessage({ op: 'error', message: String((error as Error).message ?? error) }),
  );
}, data.heartbeatMs);
