/**
 * Appends `total` events to one session of the database argv[2] (argv[3] = session id), in
 * commits of `batch` (argv[5]) with a short pause between them, from its own OS process; prints
 * `done` when all are in.
 */
import { openSqliteStore } from '../../src/store/index.ts';

const [file, sessionId, totalText, batchText] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
];
const total = Number(totalText);
const batch = Number(batchText);
const store = await openSqliteStore({ file });
for (let i = 0; i < total; i += batch) {
  const n = Math.min(batch, total - i);
  await store.commit(
    Array.from({ length: n }, (_, k) => ({
      op: 'event' as const,
      event: {
        session_id: sessionId,
        type: 'task.progress' as const,
        trace_id: 'tr_producer',
        data: { i: i + k },
      },
    })),
  );
  await new Promise((resolve) => setTimeout(resolve, 2));
}
await store.close();
process.stdout.write('done\n');
