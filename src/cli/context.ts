/** Opens the store and kernel a command needs, from the resolved configuration. */
import { existsSync } from 'node:fs';

import { Kernel, type Kernel as KernelType } from '../kernel/index.ts';
import { openStore, type Store, type StoreIntent, type StoreTarget } from '../store/index.ts';
import { type ConfigOverrides, loadConfig, type ResolvedConfig } from './config.ts';

export interface CliContext {
  readonly config: ResolvedConfig;
  readonly store: Store;
  readonly kernel: KernelType;
  close(): Promise<void>;
}

/**
 * Commands that only read pass `intent: 'read'`: on a database this user cannot write they
 * still work, reading it without changing anything (`store.readOnly`); commands that write
 * fail there with STORE_READ_ONLY before anything is touched.
 */
export async function openContext(
  overrides: ConfigOverrides,
  options: { mustExist?: boolean; intent?: StoreIntent } = {},
): Promise<CliContext> {
  const config = loadConfig(overrides);
  const store = await openStore(storeTargetOf(config, options));
  const kernel = new Kernel({ store, agentLane: config.agent_lane });
  return {
    config,
    store,
    kernel,
    close: async () => {
      kernel.close();
      await store.close();
    },
  };
}

/**
 * For commands that only read and have an answer for "nothing yet" (`ps`, `interrupts`,
 * `tasks`): null when there is no database, which they do not create.
 */
export async function openContextIfExists(overrides: ConfigOverrides): Promise<CliContext | null> {
  const config = loadConfig(overrides);
  if (!config.storeUrl && !existsSync(config.databasePath)) return null;
  return openContext(overrides, { mustExist: true, intent: 'read' });
}

/** The store the configuration names: its PostgreSQL URL, else the SQLite file. */
export function storeTargetOf(
  config: ResolvedConfig,
  options: { mustExist?: boolean; intent?: StoreIntent } = {},
): StoreTarget {
  if (config.storeUrl)
    return {
      kind: 'postgres',
      url: config.storeUrl,
      poolSize: config.postgres.pool_size,
      statementTimeoutMs: config.postgres.statement_timeout,
      connectTimeoutMs: config.postgres.connect_timeout,
      retryMs: config.postgres.retry,
    };
  return {
    kind: 'sqlite',
    file: config.databasePath,
    durability: config.durability,
    mustExist: options.mustExist ?? false,
    intent: options.intent ?? 'write',
  };
}
