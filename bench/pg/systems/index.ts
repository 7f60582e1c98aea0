/** The systems of the PostgreSQL benchmark, in table order. */
import type { PgSystem } from '../system.ts';
import { graphileWorker } from './graphile-worker.ts';
import { pgBoss } from './pg-boss.ts';
import { warden } from './warden.ts';

export const SYSTEMS: Record<string, PgSystem> = {
  warden,
  'graphile-worker': graphileWorker,
  'pg-boss': pgBoss,
};
