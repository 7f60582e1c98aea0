/**
 * The `connect` request (reference §2.2–§2.5): its params schema, protocol negotiation and the
 * `hello-ok` payload. Pure: the connection does the I/O.
 */
import { z } from 'zod';

import {
  gatewayError,
  GatewayFailure,
  LIMITS,
  MIN_CLIENT_PROTOCOL,
  MIN_PROBE_PROTOCOL,
  PROTOCOL_VERSION,
} from './frames.ts';
import type { OperatorScope } from './scopes.ts';

export const CLIENT_MODES = ['cli', 'ui', 'webchat', 'backend', 'node', 'worker', 'probe', 'test'];

/**
 * Closed where the reference is strict (protocol numbers, client mode, role), open elsewhere:
 * newer clients add fields (`locale`, `modelCatalog`, `computerUse`, …) that are safe to ignore.
 */
export const connectParamsSchema = z.looseObject({
  minProtocol: z.number().int().min(1),
  maxProtocol: z.number().int().min(1),
  client: z.looseObject({
    id: z.string().min(1).max(128),
    version: z.string().min(1).max(128),
    platform: z.string().min(1).max(128),
    mode: z.enum(CLIENT_MODES as [string, ...string[]]),
    displayName: z.string().max(256).optional(),
    deviceFamily: z.string().max(128).optional(),
    modelIdentifier: z.string().max(128).optional(),
    instanceId: z.string().max(256).optional(),
    buildId: z.string().max(96).optional(),
    timeZone: z.string().max(64).optional(),
  }),
  role: z.string().optional(),
  scopes: z.array(z.string().max(128)).max(64).optional(),
  caps: z.array(z.string().max(128)).max(64).optional(),
  auth: z
    .looseObject({
      token: z.string().max(4_096).optional(),
      password: z.string().max(4_096).optional(),
      deviceToken: z.string().max(4_096).optional(),
      bootstrapToken: z.string().max(4_096).optional(),
    })
    .optional(),
  device: z.looseObject({}).optional(),
});
export type ConnectParams = z.infer<typeof connectParamsSchema>;

export function parseConnectParams(params: unknown): ConnectParams {
  const parsed = connectParamsSchema.safeParse(params);
  if (parsed.success) return parsed.data;
  const what = parsed.error.issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
  throw new GatewayFailure(gatewayError('INVALID_REQUEST', `invalid connect params: ${what}`));
}

/** §2.3: 4 is spoken; probe-mode clients and nodes may still offer 3..4. */
export function negotiateProtocol(params: ConnectParams): number {
  const { minProtocol, maxProtocol } = params;
  const lowest =
    params.client.mode === 'probe' || params.role === 'node'
      ? MIN_PROBE_PROTOCOL
      : MIN_CLIENT_PROTOCOL;
  if (minProtocol <= PROTOCOL_VERSION && maxProtocol >= lowest && minProtocol <= maxProtocol)
    return PROTOCOL_VERSION;
  throw new GatewayFailure(
    gatewayError('INVALID_REQUEST', 'protocol mismatch', {
      code: 'PROTOCOL_MISMATCH',
      clientMinProtocol: minProtocol,
      clientMaxProtocol: maxProtocol,
      expectedProtocol: PROTOCOL_VERSION,
      minimumProbeProtocol: MIN_PROBE_PROTOCOL,
    }),
  );
}

export interface HelloOkInput {
  readonly version: string;
  readonly connId: string;
  readonly bootId: string;
  readonly methods: readonly string[];
  readonly events: readonly string[];
  readonly scopes: readonly OperatorScope[];
  readonly health: unknown;
  readonly stateVersion: { presence: number; health: number };
  readonly uptimeMs: number;
  readonly tickIntervalMs: number;
  readonly authMode: string;
}

/** §2.5: every field the schema requires; optional ones omitted rather than null. */
export function helloOk(input: HelloOkInput): Record<string, unknown> {
  return {
    type: 'hello-ok',
    protocol: PROTOCOL_VERSION,
    server: { version: input.version, connId: input.connId, bootId: input.bootId },
    features: { methods: [...input.methods], events: [...input.events] },
    snapshot: {
      presence: [],
      health: input.health,
      stateVersion: input.stateVersion,
      uptimeMs: input.uptimeMs,
      sessionDefaults: {
        defaultAgentId: 'main',
        mainKey: 'main',
        mainSessionKey: 'agent:main:main',
      },
      authMode: input.authMode,
    },
    auth: { role: 'operator', scopes: [...input.scopes] },
    policy: {
      maxPayload: LIMITS.maxPayloadBytes,
      maxBufferedBytes: LIMITS.maxBufferedBytes,
      tickIntervalMs: input.tickIntervalMs,
    },
  };
}
