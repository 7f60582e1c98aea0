/**
 * Opening whichever store the configuration names: the embedded SQLite file (one machine), or
 * PostgreSQL (any number of nodes, docs/scale-out.md). Callers hold a {@link StoreTarget} and
 * never branch on the adapter themselves.
 */
import type { Clock } from '../core/index.ts';
import { openPostgresStore } from './postgres/pg-store.ts';
import type { StoreIntent } from './sqlite/read-only-open.ts';
import { openSqliteStore } from './sqlite/sqlite-store.ts';
import type { Durability, Store } from './types.ts';

export interface PostgresTarget {
  readonly url: string;
  readonly poolSize: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly retryMs: number;
}

export type StoreTarget =
  | {
      readonly kind: 'sqlite';
      readonly file: string;
      readonly durability: Durability;
      readonly mustExist?: boolean;
      readonly intent?: StoreIntent;
    }
  | ({ readonly kind: 'postgres'; readonly durability?: Durability } & PostgresTarget);

export async function openStore(target: StoreTarget, clock?: Clock): Promise<Store> {
  if (target.kind === 'sqlite')
    return openSqliteStore({
      file: target.file,
      durability: target.durability,
      ...(target.mustExist === undefined ? {} : { mustExist: target.mustExist }),
      ...(target.intent === undefined ? {} : { intent: target.intent }),
      ...(clock ? { clock } : {}),
    });
  return openPostgresStore({
    url: target.url,
    poolSize: target.poolSize,
    statementTimeoutMs: target.statementTimeoutMs,
    connectTimeoutMs: target.connectTimeoutMs,
    retryMs: target.retryMs,
    // PostgreSQL durability is the server's; `strict` is the safe default whatever SQLite uses.
    durability: 'strict',
    ...(clock ? { clock } : {}),
  });
}
