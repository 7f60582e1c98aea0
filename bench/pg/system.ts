/**
 * What each system under test provides to the PostgreSQL benchmark: a producer (creates the
 * system's schema, enqueues, answers how many jobs are unfinished, drops the schema) and a
 * worker node (one per process; connects, then consumes on `start`). The harness never reaches
 * into a system except through this interface, so all three are driven the same way.
 */
import pg from 'pg';

export { makePayload, type Payload, PAD } from '../queue/types.ts';
import type { Payload } from '../queue/types.ts';

/** Settings every system gets alike (see run.ts). */
export interface PgContext {
  /** postgres://…/database, the same database for every system. */
  readonly url: string;
  /** This run's fresh schema (a plain identifier), dropped after the run. */
  readonly schema: string;
  /** Handlers in flight per node. */
  readonly concurrency: number;
  /** Connections per process at most. */
  readonly poolSize: number;
  /** Jobs per enqueue call. */
  readonly batchSize: number;
}

export interface SystemInfo {
  readonly name: string;
  /** Claimed-but-unstarted depth per node, and why. */
  readonly prefetch: string;
  /** The knobs used, printed under the table. */
  readonly settings: string;
}

export interface Producer {
  /** Creates the schema (migrations) and whatever the producer needs. Not timed. */
  setup(): Promise<void>;
  /** One batch (≤ batchSize) through the system's bulk API. */
  enqueue(payloads: readonly Payload[]): Promise<void>;
  /** One job through the system's single-job API (the latency test). */
  enqueueOne(payload: Payload): Promise<void>;
  /** Jobs not yet recorded as completed, from the database. */
  unfinished(): Promise<number>;
  /** Closes the producer's connections (the schema is dropped by the harness). */
  close(): Promise<void>;
}

export interface WorkerNode {
  /** Opens connections; consumes nothing yet. Not timed. */
  connect(): Promise<void>;
  /** Starts consuming, at most `concurrency` handlers in flight; resolves once running. */
  start(onJob: (payload: Payload) => void): Promise<void>;
  /** Problems the system reported (worker errors, lost leases, …). */
  anomalies(): string[];
  stop(): Promise<void>;
}

export interface PgSystem {
  info(ctx: PgContext): SystemInfo;
  /** Why the system cannot run here (e.g. Warden's adapter is missing), or null. */
  unavailable(): Promise<string | null>;
  producer(ctx: PgContext): Producer;
  worker(ctx: PgContext): WorkerNode;
}

/** A single connection for the harness's own queries (counts, DROP SCHEMA). */
export async function probeClient(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  await client.connect();
  return client;
}

export async function countRows(client: pg.Client, sql: string, params: unknown[] = []) {
  const r = await client.query(sql, params);
  return (r.rows[0] as { n: number }).n;
}

/** A logger that drops everything (the peers log every job by default). */
export const silent = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  log: () => {},
};
