/**
 * LangGraph JS's side of the steps benchmark: a StateGraph of STAGES nodes in a line, compiled
 * with the SQLite checkpointer, invoked with `durability: 'sync'` so each step's checkpoint is
 * written before the next step starts (the default, 'async', writes it while the next step
 * runs). The checkpointer gets its better-sqlite3 connection from here, so its PRAGMAs can be
 * read back; `synchronous` is left at the connection's default (better-sqlite3 makes a WAL
 * database NORMAL, like Warden's `fast` mode) or set to FULL (like Warden's `strict`).
 */
import { Annotation, END, START, StateGraph } from '@langchain/langgraph';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import Database from 'better-sqlite3';

import { readPragmas } from '../queue/types.ts';
import { sqliteDurability } from '../queue/durability.ts';
import { type GraphSystem, type OpenOptions, STAGES } from './graph.ts';

const State = Annotation.Root({
  last: Annotation<number>({ reducer: (_old, value) => value, default: () => -1 }),
});

/** The part of the builder used here; node names are built at run time, so not typed literally. */
interface Builder {
  addNode(name: string, fn: () => Promise<{ last: number }>): Builder;
  addEdge(from: string, to: string): Builder;
  compile(options: { checkpointer: SqliteSaver }): Graph;
}
interface RunConfig {
  readonly configurable: { thread_id: string };
  readonly durability: 'sync';
}
interface Graph {
  invoke(input: { last: number } | null, config: RunConfig): Promise<{ last: number }>;
  getState(config: { configurable: { thread_id: string } }): Promise<{
    values: { last?: number };
    next: readonly string[];
  }>;
}

let threads = 0;

export async function openLangGraph(
  synchronous: 'default' | 'FULL',
  options: OpenOptions,
): Promise<GraphSystem> {
  const db = new Database(options.file);
  const saver = new SqliteSaver(db);
  // The saver sets itself up (tables, journal_mode=WAL) on first use: a read of a thread that
  // does not exist, so the PRAGMAs read below are the ones the runs get.
  await saver.getTuple({ configurable: { thread_id: 'setup-probe' } });
  if (synchronous === 'FULL') db.pragma('synchronous = FULL');
  const pragmas = readPragmas(db, 'read back from the checkpointer connection');
  let builder = new StateGraph(State) as unknown as Builder;
  for (let i = 0; i < STAGES; i++)
    builder = builder.addNode(`s${i}`, async () => {
      await options.node(i);
      return { last: i };
    });
  builder = builder.addEdge(START, 's0');
  for (let i = 0; i + 1 < STAGES; i++) builder = builder.addEdge(`s${i}`, `s${i + 1}`);
  builder = builder.addEdge(`s${STAGES - 1}`, END);
  const graph = builder.compile({ checkpointer: saver });
  const config = (thread_id: string): RunConfig => ({
    configurable: { thread_id },
    durability: 'sync',
  });
  const newThread = () => `t${process.pid}-${++threads}`;
  return {
    info: {
      name: synchronous === 'FULL' ? 'LangGraph (synchronous=FULL)' : 'LangGraph (default)',
      durability: sqliteDurability(pragmas),
      synchronous: pragmas.synchronous,
      settings: `StateGraph of ${STAGES} nodes in a line, SqliteSaver on a better-sqlite3 connection${synchronous === 'FULL' ? ' with PRAGMA synchronous=FULL' : ' (its defaults)'}; invoke(…, { durability: 'sync' }), one thread per graph run`,
    },
    async run() {
      const thread = newThread();
      await graph.invoke({ last: -1 }, config(thread));
      return thread;
    },
    async begin() {
      const thread = newThread();
      // Not awaited: the crash test kills this process while a node is running.
      graph.invoke({ last: -1 }, config(thread)).catch(() => {});
      return thread;
    },
    async finish(thread) {
      // Resuming a thread: invoke with no input continues from its last checkpoint.
      await graph.invoke(null, config(thread));
    },
    async verify(thread) {
      const state = await graph.getState({ configurable: { thread_id: thread } });
      if (state.values.last !== STAGES - 1 || state.next.length > 0)
        throw new Error(
          `thread ${thread} stopped at node ${state.values.last ?? '?'} (next: ${state.next.join(', ') || 'none'})`,
        );
    },
    async close() {
      db.close();
    },
  };
}
