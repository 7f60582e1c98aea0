/** `WardenClient.connect` options: checked and resolved once, frozen. */
import WebSocket from 'ws';
import { z } from 'zod';

import { checkParams, WardenError } from '../core/index.ts';
import type { ClientInfo, ProtocolRange } from './types.ts';

/** The protocol versions this client speaks. */
export const CLIENT_PROTOCOL: ProtocolRange = Object.freeze({ min: 1, max: 1 });

/** Reconnect policy: exponential backoff with jitter, bounded. */
export interface ReconnectOptions {
  /** @default 100 */
  readonly initialDelayMs?: number;
  /** @default 5000 */
  readonly maxDelayMs?: number;
  /**
   * Attempts before giving up (the client then closes with DAEMON_UNREACHABLE).
   * @default Infinity
   */
  readonly maxAttempts?: number;
}

export interface WardenClientOptions {
  /** The daemon's ACP endpoint: `ws://host:port/acp` (`http(s)://` works; a bare host gets `/acp`). */
  readonly url: string;
  /** A bearer token: sent in the `Authorization` header of the upgrade, never in the URL. */
  readonly token: string;
  /** An `Origin` header (only for clients that must look like a browser). @default none */
  readonly origin?: string;
  /** Sent in `system.hello`. @default {name: 'warden-client', version: '0'} */
  readonly client?: ClientInfo;
  /** Versions this side accepts. @default {min: 1, max: 1} */
  readonly protocol?: ProtocolRange;
  /** Default timeout of a call (and of opening the socket). @default 30000 */
  readonly timeoutMs?: number;
  /**
   * Largest frame this client sends; the server's `limits.max_frame_bytes` lowers it.
   * @default 1048576
   */
  readonly maxFrameBytes?: number;
  /** Reconnect after a drop (with resume of subscriptions), or `false`. @default {} */
  readonly reconnect?: ReconnectOptions | false;
  /** The WebSocket implementation (`ws`'s class or a compatible subclass). @default ws */
  readonly WebSocket?: typeof WebSocket;
}

export interface ResolvedWardenClientOptions {
  readonly url: string;
  readonly token: string;
  readonly origin: string | undefined;
  readonly client: ClientInfo;
  readonly protocol: ProtocolRange;
  readonly timeoutMs: number;
  readonly maxFrameBytes: number;
  readonly reconnect: Required<ReconnectOptions> | false;
  readonly WebSocket: typeof WebSocket;
}

const positiveInt = z.number().int().positive();
const optionsSchema = z.strictObject({
  url: z.string().min(1),
  token: z.string().min(1, 'expected a non-empty token'),
  origin: z.string().min(1).optional(),
  client: z.strictObject({ name: z.string().min(1), version: z.string().min(1) }).optional(),
  protocol: z
    .strictObject({ min: positiveInt, max: positiveInt })
    .refine((p) => p.min <= p.max, 'expected min <= max')
    .optional(),
  timeoutMs: positiveInt.optional(),
  maxFrameBytes: z.number().int().min(1024).optional(),
  reconnect: z
    .union([
      z.literal(false),
      z.strictObject({
        initialDelayMs: positiveInt.optional(),
        maxDelayMs: positiveInt.optional(),
        maxAttempts: z.union([positiveInt, z.literal(Infinity)]).optional(),
      }),
    ])
    .optional(),
  WebSocket: z
    .custom<typeof WebSocket>((v) => typeof v === 'function', 'expected a class')
    .optional(),
});

/** Query parameters that would put a credential in the URL (and so in proxy logs). */
const CREDENTIAL_PARAMS = ['token', 'access_token', 'auth'];

export function resolveClientOptions(options: WardenClientOptions): ResolvedWardenClientOptions {
  const o = checkParams('WardenClient.connect', optionsSchema, options);
  const reconnect =
    o.reconnect === false
      ? false
      : {
          initialDelayMs: o.reconnect?.initialDelayMs ?? 100,
          maxDelayMs: o.reconnect?.maxDelayMs ?? 5_000,
          maxAttempts: o.reconnect?.maxAttempts ?? Infinity,
        };
  return Object.freeze({
    url: acpUrl(o.url),
    token: o.token,
    origin: o.origin,
    client: o.client ?? { name: 'warden-client', version: '0' },
    protocol: o.protocol ?? CLIENT_PROTOCOL,
    timeoutMs: o.timeoutMs ?? 30_000,
    maxFrameBytes: o.maxFrameBytes ?? 1_048_576,
    reconnect,
    WebSocket: o.WebSocket ?? WebSocket,
  });
}

/** The ws:// URL to open; refuses one that carries a credential. */
function acpUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl(
      `expected a ws://, wss://, http:// or https:// URL (got ${JSON.stringify(raw)})`,
    );
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw invalidUrl(`expected a ws://, wss://, http:// or https:// URL (got ${url.protocol})`);
  }
  const leaked = CREDENTIAL_PARAMS.filter((name) => url.searchParams.has(name));
  if (leaked.length > 0 || url.username !== '' || url.password !== '') {
    // Never echo the URL: it holds the secret.
    throw invalidUrl(
      `the URL carries a credential (${leaked.length > 0 ? leaked.map((n) => `?${n}=`).join(', ') : 'user:password@'}); the daemon refuses tokens in URLs, which end up in logs: pass it as the token option (it is sent in the Authorization header)`,
    );
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/acp';
  return url.toString();
}

function invalidUrl(message: string): WardenError {
  return new WardenError('INVALID_PARAMS', `WardenClient.connect: url: ${message}`, {
    details: { where: 'WardenClient.connect', issues: [{ path: 'url', message }] },
  });
}
