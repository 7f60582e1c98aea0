/**
 * The systems of the steps benchmark, in table order. Each entry loads its modules and returns
 * the function that opens it, so the resume test can time opening apart from module loading.
 *
 * LangGraph runs twice: on the checkpointer's connection as it comes (better-sqlite3 switches a
 * WAL database to synchronous=NORMAL by default) and with synchronous=FULL. Each LangGraph
 * variant is compared with the Warden mode whose `synchronous` setting, as read back, is the same.
 */
import type { GraphSystem, OpenOptions } from './graph.ts';

export type Opener = (options: OpenOptions) => Promise<GraphSystem>;

export const STEP_SYSTEMS: Record<string, () => Promise<Opener>> = {
  'warden-fast': async () => {
    const { openWarden } = await import('./warden.ts');
    return (o) => openWarden('fast', o);
  },
  'warden-strict': async () => {
    const { openWarden } = await import('./warden.ts');
    return (o) => openWarden('strict', o);
  },
  langgraph: async () => {
    const { openLangGraph } = await import('./langgraph.ts');
    return (o) => openLangGraph('default', o);
  },
  'langgraph-full': async () => {
    const { openLangGraph } = await import('./langgraph.ts');
    return (o) => openLangGraph('FULL', o);
  },
};
