/**
 * Configuration of the webhook channel: the `channels.webhook[]` config.yaml entry
 * ({@link webhookChannelConfigSchema}), the driver's options and their resolution.
 */
import { z } from 'zod';

import { type Clock, clockParam, systemClock } from '../../core/index.ts';
import type { InjectionScore } from '../../security/guards/prompt-injection.ts';
import type { HostResolver } from '../../security/guards/safe-fetch.ts';
import { SECRET_NAME_PATTERN } from '../../security/secret-forms.ts';
import { AGENT_ID_PATTERN, WEBHOOK_DEFAULT_MAX_TEXT_CHARS } from './registry.ts';
import { MIN_SPLIT_CHARS } from './text-split.ts';
import { DM_SCOPES, type DmScope, type InboundMessage } from './types.ts';

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;
const SLUG_TEXT = 'expected a slug: 1-63 lower-case letters, digits and -, not starting with -';
export const HTTP_URL = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).max(2048);

/** Shortest webhook secret accepted: an HMAC key short enough to guess offline is no key. */
export const MIN_WEBHOOK_SECRET_CHARS = 16;

/**
 * `channels.webhook[]` entries of config.yaml (unknown keys are errors). `secret_ref` names a
 * Warden secret (`WARDEN_SECRET_<NAME>` or secrets.yaml); the daemon resolves it and hands the
 * value to {@link webhookOptionsFromConfig}.
 */
export const webhookChannelConfigSchema = z.strictObject({
  /** The channel's name; its URL path and driver id (`webhook:<name>`) use it. */
  name: z.string().regex(SLUG, SLUG_TEXT),
  /** The Warden secret that keys both directions' signatures. */
  secret_ref: z.string().regex(SECRET_NAME_PATTERN, 'expected a secret name like WEBHOOK_CRM'),
  /** Where replies go when the inbound message named no `callbackUrl`. */
  reply_url: HTTP_URL.optional(),
  /** The agent inbound messages route to. @default 'main' */
  agent_id: z.string().regex(AGENT_ID_PATTERN, 'expected an agent id').default('main'),
  /** How direct messages map onto sessions (reference §6.1). @default 'main' */
  dm_scope: z.enum(DM_SCOPES).default('main'),
  /** Let replies reach loopback and private addresses (never cloud metadata). @default false */
  allow_private_network: z.boolean().default(false),
  /** Refuse inbound requests without `x-warden-timestamp`. @default false */
  require_timestamp: z.boolean().default(false),
  /** Longest reply part, in UTF-16 code units. @default 4096 */
  max_text_chars: z
    .number()
    .int()
    .min(MIN_SPLIT_CHARS)
    .max(1_000_000)
    .default(WEBHOOK_DEFAULT_MAX_TEXT_CHARS),
});
export type WebhookChannelConfig = z.output<typeof webhookChannelConfigSchema>;

/** Options of `WebhookChannel`; the module comment of webhook.ts says what each limit does. */
export interface WebhookChannelOptions {
  /** The channel name (a slug). */
  readonly name: string;
  /** The resolved secret (≥ {@link MIN_WEBHOOK_SECRET_CHARS} characters). */
  readonly secret: string;
  /** Default reply target. */
  readonly replyUrl?: string;
  /** @default 'main' */
  readonly agentId?: string;
  /** @default 'main' */
  readonly dmScope?: DmScope;
  /** The main session's key (dmScope `main`). @default 'main' */
  readonly mainKey?: string;
  /** Replies may reach loopback and private ranges (not metadata). @default false */
  readonly allowPrivateNetwork?: boolean;
  /** @default false */
  readonly requireTimestamp?: boolean;
  /** @default 4096 */
  readonly maxTextChars?: number;
  /** Largest inbound body, in bytes. @default 262144 (256 KiB) */
  readonly maxBodyBytes?: number;
  /** Inbound requests handled at once; more get 429. @default 64 */
  readonly maxInFlight?: number;
  /** Accepted distance of `x-warden-timestamp` from now, in ms. @default 300000 (5 min) */
  readonly replayWindowMs?: number;
  /** @default 1200000 (20 min, reference §6.4) */
  readonly dedupeTtlMs?: number;
  /** @default 5000 (reference §6.4) */
  readonly dedupeMaxEntries?: number;
  /** Deadline of one reply post, in ms. @default 10000 */
  readonly sendTimeoutMs?: number;
  /** Prompt-injection scoring (config `security.injection`); `off` hands the sink a clean score. */
  readonly injection?: {
    readonly mode?: 'enforce' | 'off';
    readonly reviewAt?: number;
    readonly blockAt?: number;
  };
  /** Called for each message the guard blocked (audit or quarantine it). */
  readonly onBlocked?: (msg: InboundMessage, guard: InjectionScore) => void;
  /** @default systemClock */
  readonly clock?: Clock;
  /** DNS for reply URLs (tests). @default the system resolver */
  readonly resolve?: HostResolver;
}

export const webhookOptionsSchema = z.strictObject({
  name: z.string().regex(SLUG, SLUG_TEXT),
  secret: z
    .string()
    .min(MIN_WEBHOOK_SECRET_CHARS, `expected at least ${MIN_WEBHOOK_SECRET_CHARS} characters`),
  replyUrl: HTTP_URL.optional(),
  agentId: z.string().regex(AGENT_ID_PATTERN, 'expected an agent id').default('main'),
  dmScope: z.enum(DM_SCOPES).default('main'),
  mainKey: z
    .string()
    .regex(/^[^\s:]{1,64}$/, 'expected a key without spaces or ":"')
    .default('main'),
  allowPrivateNetwork: z.boolean().default(false),
  requireTimestamp: z.boolean().default(false),
  maxTextChars: z
    .number()
    .int()
    .min(MIN_SPLIT_CHARS)
    .max(1_000_000)
    .default(WEBHOOK_DEFAULT_MAX_TEXT_CHARS),
  maxBodyBytes: z
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(256 * 1024),
  maxInFlight: z.number().int().min(1).max(10_000).default(64),
  replayWindowMs: z.number().int().min(1000).max(86_400_000).default(300_000),
  dedupeTtlMs: z.number().int().min(1000).max(86_400_000).default(1_200_000),
  dedupeMaxEntries: z.number().int().min(1).max(1_000_000).default(5000),
  sendTimeoutMs: z.number().int().min(1).max(600_000).default(10_000),
  injection: z
    .strictObject({
      mode: z.enum(['enforce', 'off']).default('enforce'),
      reviewAt: z.number().min(0).max(1).optional(),
      blockAt: z.number().min(0).max(1).optional(),
    })
    .prefault({}),
  onBlocked: z
    .custom<(msg: InboundMessage, guard: InjectionScore) => void>(
      (v) => typeof v === 'function',
      'expected a function',
    )
    .optional(),
  clock: clockParam.default(systemClock),
  resolve: z.custom<HostResolver>((v) => typeof v === 'function', 'expected a function').optional(),
});
/** The validated options (defaults applied). */
export type ResolvedWebhookOptions = z.output<typeof webhookOptionsSchema>;

/** {@link WebhookChannelOptions} from a parsed config entry and its resolved secret. */
export function webhookOptionsFromConfig(
  config: WebhookChannelConfig,
  secret: string,
): WebhookChannelOptions {
  return {
    name: config.name,
    secret,
    ...(config.reply_url === undefined ? {} : { replyUrl: config.reply_url }),
    agentId: config.agent_id,
    dmScope: config.dm_scope,
    allowPrivateNetwork: config.allow_private_network,
    requireTimestamp: config.require_timestamp,
    maxTextChars: config.max_text_chars,
  };
}

/** Loopback, RFC 1918, CGNAT and IPv6 unique-local: what `allowPrivateNetwork` opens. */
export const PRIVATE_NETWORK_CIDRS = [
  '127.0.0.0/8',
  '::1/128',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  'fc00::/7',
] as const;
