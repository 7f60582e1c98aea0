/**
 * Another process writing the daemon's SQLite file: appends `total` events to one session in
 * commits of `batch`, as fast as it can, then prints its own elapsed time. The daemon hears
 * the commits through its change watcher and reads them from the store in pages.
 *
 *   node acp/producer.ts <db file> <session id> <total> <batch> <durability>
 */
import { openSqliteStore } from '../../src/store/index.ts';

const [file, sessionId, totalText, batchText, durability] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  'fast' | 'strict',
];
const total = Number(totalText);
const batch = Number(batchText);
const PAD = 'x'.repeat(64);
const store = await openSqliteStore({ file, durability });
const t0 = performance.now();
for (let i = 0; i < total; i += batch) {
  const n = Math.min(batch, total - i);
  await store.commit(
    Array.from({ length: n }, (_, k) => ({
      op: 'event' as const,
      event: {
        session_id: sessionId,
        type: 'task.progress' as const,
        trace_id: 'tr_producer',
        data: { k: i + k, pad: PAD },
      },
    })),
  );
}
const seconds = (performance.now() - t0) / 1000;
await store.close();
process.stdout.write(`${JSON.stringify({ produced: total, seconds })}\n`);
