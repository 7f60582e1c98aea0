/** What the daemon needs from the resolved configuration (the CLI maps config.yaml onto it). */
import type { WebhookChannelConfig } from '../protocols/channels/index.ts';
import type { SecurityConfig } from '../security/index.ts';
import type { Durability, StoreTarget } from '../store/index.ts';

export interface DaemonSettings extends SecurityConfig {
  readonly home: string;
  /** The SQLite file (for display when the store is PostgreSQL). */
  readonly databasePath: string;
  /** Where the data lives: the SQLite file or a PostgreSQL database shared with other nodes. */
  readonly store: StoreTarget;
  readonly durability: Durability;
  readonly agentLane: string;
  readonly model: string;
  readonly worker: {
    readonly concurrency: number;
    readonly lease: number;
    readonly heartbeat?: number | undefined;
  };
  /** RetentionSweeper options, or null when retention is disabled. */
  readonly retention: {
    finishedMs?: number;
    deadMs?: number;
    eventsMs?: number;
    intervalMs?: number;
    batchSize?: number;
  } | null;
  readonly server: {
    readonly listen: string;
    readonly allowed_origins: readonly string[];
    readonly max_connections: number;
    readonly max_frame_bytes: number;
    readonly max_subscriptions: number;
    readonly max_in_flight: number;
    readonly replay_page_size: number;
    readonly outbound_high_water_bytes: number;
    readonly stall_timeout: number;
    readonly shutdown_grace: number;
    readonly log_level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
    readonly grpc: {
      readonly listen: string | null;
      readonly anonymous: string | null;
      readonly max_message_bytes: number;
    };
    readonly openclaw: {
      readonly listen: string | null;
      readonly auth: {
        readonly mode: 'token' | 'password' | 'none';
        readonly password_secret: string | null;
        readonly scopes: readonly ('read' | 'write' | 'admin' | 'approvals')[];
      };
      readonly tick_interval: number;
      readonly handshake_timeout: number;
      readonly max_connections: number;
      readonly max_in_flight: number;
      readonly workflow: string | null;
      readonly queue_mode: 'followup' | 'steer' | 'collect' | 'interrupt';
      readonly exec_approvals: { readonly no_approver_clients: 'wait' | 'deny' };
    };
  };
  readonly security: SecurityConfig['security'] & {
    readonly integrity: { readonly files: readonly string[]; readonly interval: number };
    readonly watch_policy: boolean;
  };
  /** Chat channels (docs/channels.md); they need `server.openclaw.listen`. */
  readonly channels: { readonly webhook: readonly WebhookChannelConfig[] };
  readonly lanes: Readonly<
    Record<
      string,
      { readonly concurrency?: number | undefined; readonly max_depth?: number | undefined }
    >
  >;
}
