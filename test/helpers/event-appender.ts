/**
 * Appends events without pause to the sessions named in argv[3..] of the database argv[2],
 * from its own OS process, until it is killed. Prints `ready` once its first commit is in.
 */
import { openSqliteStore } from '../../src/store/index.ts';

const [file, ...sessions] = process.argv.slice(2) as [string, ...string[]];
const store = await openSqliteStore({ file });
let i = 0;
for (;;) {
  // One transaction appends to every session, then one more to a single session.
  await store.commit(
    sessions.map((session_id) => ({
      op: 'event' as const,
      event: { session_id, type: 'task.progress', trace_id: 'tr_appender', data: { i } },
    })),
  );
  await store.commit([
    {
      op: 'event',
      event: {
        session_id: sessions[i % sessions.length]!,
        type: 'task.progress',
        trace_id: 'tr_appender',
        data: { i, single: true },
      },
    },
  ]);
  if (i === 0) process.stdout.write('ready\n');
  i += 1;
  await new Promise((resolve) => setTimeout(resolve, 1));
}
