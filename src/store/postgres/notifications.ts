/**
 * "The database may have changed", across nodes, without polling (DESIGN.md §6 "Idle means
 * idle"): every write transaction ends with `pg_notify(channel, node)`, delivered to every
 * listening node when (and only if) it commits; one dedicated connection per store LISTENs.
 * A node ignores its own notifications (it announced its commits locally already). When the
 * listening connection breaks — a PostgreSQL restart or failover — it reconnects with backoff and
 * then tells every listener to look again: a notification sent while it was away is recovered by
 * that one cheap re-check, never waited for.
 */
import { Client, type ClientConfig } from 'pg';

import { quoteIdent } from './migrate.ts';

type Listener = () => void;

const BACKOFF_MS = [50, 100, 250, 500, 1_000, 2_000, 5_000] as const;

export class PgNotifications {
  readonly channel: string;
  readonly #config: ClientConfig;
  readonly #node: string;
  readonly #listeners = new Set<Listener>();
  #client: Client | null = null;
  #connecting = false;
  #retry: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;
  /** Reconnections after a lost LISTEN connection (for health and tests). */
  reconnects = 0;

  constructor(config: ClientConfig, channel: string, node: string) {
    this.#config = config;
    this.channel = channel;
    this.#node = node;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    if (!this.#client && !this.#connecting) void this.#connect();
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== null;
  }

  /** A commit of this node: heard at once, without a round trip. */
  notifyLocal(): void {
    this.#emit();
  }

  #emit(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch {
        // a listener's failure is its own
      }
    }
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    this.#connecting = true;
    const client = new Client(this.#config);
    client.on('error', () => this.#lost(client));
    client.on('end', () => this.#lost(client));
    client.on('notification', (message) => {
      if (message.channel === this.channel && message.payload !== this.#node) this.#emit();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
      if (this.#closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.#client = client;
      this.#failures = 0;
      // Whatever was committed while nobody listened (before the first LISTEN, or while the
      // connection was down) is found by looking again once.
      this.#emit();
    } catch {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.#schedule();
    } finally {
      this.#connecting = false;
    }
  }

  #lost(client: Client): void {
    if (this.#client !== client) return;
    this.#client = null;
    this.reconnects += 1;
    void client.end().catch(() => undefined);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#retry) return;
    const delay = BACKOFF_MS[Math.min(this.#failures, BACKOFF_MS.length - 1)]!;
    this.#failures += 1;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#connect();
    }, delay);
    this.#retry.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#listeners.clear();
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
