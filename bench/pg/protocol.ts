/**
 * The messages between run.ts and its node.ts processes (a module of its own, so the
 * orchestrator can use the types without loading a node's entry point).
 */
import type { PgContext } from './system.ts';

export interface NodeConfig {
  readonly system: string;
  readonly role: 'producer' | 'worker';
  readonly ctx: PgContext;
  /** Ids 0..n-1 are expected (the delivery check's size). */
  readonly n: number;
  /** Worker: report every job's start (latency test) instead of a periodic count. */
  readonly latency: boolean;
}

export type NodeCommand =
  | { cmd: 'setup' }
  | { cmd: 'connect' }
  | { cmd: 'start' }
  | { cmd: 'enqueueAll' }
  | { cmd: 'one'; i: number }
  | { cmd: 'waitDone'; timeoutMs: number }
  | { cmd: 'stop' }
  | { cmd: 'close' };

export type NodeMessage =
  | { type: 'ok'; at: number }
  | { type: 'enqueued'; t0: number; t1: number }
  | { type: 'done'; at: number }
  | { type: 'stopped'; counts: string; anomalies: string[] }
  | { type: 'progress'; handled: number }
  | { type: 'handled'; i: number; at: number }
  | { type: 'error'; error: string };

export const epochNow = () => performance.timeOrigin + performance.now();
