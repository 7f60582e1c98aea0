/**
 * The workload of the steps benchmark, the same for every system: a linear graph of STAGES
 * nodes (s0 → s1 → … → s19 → end) whose node does nothing but call a hook, so a graph run's
 * wall time is all orchestration and persistence overhead. Each system checkpoints every step
 * durably before the next one starts.
 */
export const STAGES = 20;

/** The crash test kills the run while this node (0-based) is executing. */
export const KILL_AT = 10;

/** Called by every node execution with the node's index; may block (crash test). */
export type NodeHook = (index: number) => void | Promise<void>;

export interface GraphInfo {
  readonly name: string;
  /** What a completed step survives, with the settings read back from the connection. */
  readonly durability: string;
  /** SQLite `synchronous` of the connection (read back where the system exposes it). */
  readonly synchronous: string;
  /** The knobs used, printed under the table. */
  readonly settings: string;
}

/** One system, opened on one database file. */
export interface GraphSystem {
  readonly info: GraphInfo;
  /** Runs a fresh graph to completion; returns its run / thread id. */
  run(): Promise<string>;
  /** Starts a fresh graph run without waiting for it (crash test); returns its id. */
  begin(): Promise<string>;
  /** Drives to completion a run that a killed process left half done (resume test). */
  finish(id: string): Promise<void>;
  /** Throws unless the run completed every stage. */
  verify(id: string): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly file: string;
  readonly node: NodeHook;
}
