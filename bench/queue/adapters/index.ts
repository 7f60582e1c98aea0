/**
 * The systems under test, in table order. Adapters are imported lazily so a peer that fails to
 * load (missing service, broken install) only fails its own row.
 */
import type { AdapterFactory } from '../types.ts';

export const SYSTEMS: Record<string, () => Promise<AdapterFactory>> = {
  'warden-fast': async () => (await import('./warden.ts')).warden('fast'),
  'warden-strict': async () => (await import('./warden.ts')).warden('strict'),
  bullmq: async () => (await import('./bullmq.ts')).bullmq,
  'graphile-worker': async () => (await import('./graphile-worker.ts')).graphileWorker,
  'pg-boss': async () => (await import('./pg-boss.ts')).pgBoss,
  plainjob: async () => (await import('./plainjob.ts')).plainjob,
  liteque: async () => (await import('./liteque.ts')).liteque,
};

/** Row labels for systems whose adapter could not even be loaded. */
export const LABELS: Record<string, string> = {
  'warden-fast': 'Warden (fast)',
  'warden-strict': 'Warden (strict)',
  bullmq: 'BullMQ',
  'graphile-worker': 'graphile-worker',
  'pg-boss': 'pg-boss',
  plainjob: 'plainjob',
  liteque: 'liteque',
};
