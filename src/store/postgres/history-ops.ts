/**
 * The PostgreSQL adapter's history operations in one place for PostgresStore: the effect
 * journal, shared rate windows, retention and event reads, session deletion and read
 * snapshots. The work is in effect-writes.ts, rate-writes.ts, retention.ts, session-delete.ts
 * and snapshot.ts.
 */
import { getEffect, insertEffect, transitionEffect } from './effect-writes.ts';
import { rateUsage, takeRate } from './rate-writes.ts';
import { hasPrunable, prune, readEvents } from './retention.ts';
import { deleteSession } from './session-delete.ts';
import { PostgresSnapshot } from './snapshot.ts';

export const effectOps = { insert: insertEffect, transition: transitionEffect, get: getEffect };
export const rateOps = { take: takeRate, usage: rateUsage };
export const retentionOps = { readEvents, hasPrunable, prune };
export const sessionDeleteOps = { delete: deleteSession };
export const snapshotOps = { open: PostgresSnapshot.open.bind(PostgresSnapshot) };
