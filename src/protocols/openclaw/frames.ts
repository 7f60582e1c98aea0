/**
 * OpenClaw Gateway protocol v4 frames (reference/openclaw-gateway-v4.md §1–§3): parsing what a
 * client sends (`req`, `cancel`), building what the server sends (`res`, `event`), and the error
 * shape. Parsing never throws: a malformed frame is answered with INVALID_REQUEST and the
 * socket stays open (§1.2).
 */
import { z } from 'zod';

import { ERROR_CATALOGUE, isWardenError } from '../../core/index.ts';

export const PROTOCOL_VERSION = 4;
export const MIN_CLIENT_PROTOCOL = 4;
/** Probe-mode and node clients may still speak 3 (§2.3). */
export const MIN_PROBE_PROTOCOL = 3;

export const LIMITS = {
  /** §1.4 `MAX_PREAUTH_PAYLOAD_BYTES`. */
  preauthPayloadBytes: 65_536,
  /** §1.4 `MAX_PAYLOAD_BYTES`. */
  maxPayloadBytes: 26_214_400,
  /** §1.4 `MAX_BUFFERED_BYTES`: above this a socket is a slow consumer (§5.3). */
  maxBufferedBytes: 52_428_800,
  /** §1.4: close reasons are cut to 120 UTF-8 bytes. */
  closeReasonBytes: 120,
} as const;

/** §3 error codes Warden emits (`NOT_LINKED`, `AGENT_TIMEOUT` are deprecated: never sent). */
export type GatewayErrorCode =
  'INVALID_REQUEST' | 'FORBIDDEN' | 'NOT_PAIRED' | 'UNAVAILABLE' | 'APPROVAL_NOT_FOUND';

export interface ErrorShape {
  readonly code: GatewayErrorCode;
  readonly message: string;
  readonly details?: Record<string, unknown>;
  readonly retryable?: boolean;
  readonly retryAfterMs?: number;
}

export function gatewayError(
  code: GatewayErrorCode,
  message: string,
  details?: Record<string, unknown>,
  extra: { retryable?: boolean; retryAfterMs?: number } = {},
): ErrorShape {
  return {
    code,
    message: message === '' ? code.toLowerCase() : message,
    ...(details ? { details } : {}),
    ...extra,
  };
}

/** A thrown error carrying an OpenClaw error shape (handlers throw it to answer `ok:false`). */
export class GatewayFailure extends Error {
  readonly shape: ErrorShape;
  /** A payload sent beside the error (a failed `agent` final carries `{runId, status, summary}`). */
  readonly payload: unknown;
  constructor(shape: ErrorShape, payload?: unknown) {
    super(shape.message);
    this.shape = shape;
    this.payload = payload;
  }
}

export function invalidRequest(message: string, details?: Record<string, unknown>): GatewayFailure {
  return new GatewayFailure(gatewayError('INVALID_REQUEST', message, details));
}

/**
 * Maps any error onto the gateway's shape. Warden's own codes travel in `details.wardenCode`
 * so a Warden-aware client can branch on them; bad input and unknown things are
 * INVALID_REQUEST (§3), policy denials FORBIDDEN, and everything else UNAVAILABLE (a handler
 * failed) — with `retryable` as Warden's catalogue says. Internal errors never leak their text.
 */
export function toErrorShape(error: unknown): ErrorShape {
  if (error instanceof GatewayFailure) return error.shape;
  if (!isWardenError(error))
    return gatewayError('UNAVAILABLE', 'internal error; nothing was changed');
  const w = error;
  const spec = ERROR_CATALOGUE[w.code];
  const details = { wardenCode: w.code, ...(w.details ?? {}) };
  const extra = {
    retryable: spec.retryable,
    ...(w.retryAfterMs === undefined ? {} : { retryAfterMs: w.retryAfterMs }),
  };
  switch (w.code) {
    case 'INVALID_PARAMS':
    case 'WORKFLOW_INVALID':
    case 'CONFIG_INVALID':
    case 'NOT_FOUND':
    case 'ALREADY_EXISTS':
    case 'CONFLICT':
    case 'INVALID_STATE':
    case 'IDEMPOTENCY_CONFLICT':
    case 'PAYLOAD_TOO_LARGE':
      return gatewayError('INVALID_REQUEST', w.message, details, extra);
    case 'FORBIDDEN':
    case 'UNAUTHORIZED':
    case 'POLICY_DENIED':
      return gatewayError('FORBIDDEN', w.message, details, extra);
    case 'INTERNAL':
      return gatewayError('UNAVAILABLE', 'internal error; nothing was changed', {
        wardenCode: 'INTERNAL',
      });
    default:
      return gatewayError('UNAVAILABLE', w.message, details, extra);
  }
}

/** §1.2: a request id is a non-empty string, echoed byte for byte and never parsed. */
const requestFrame = z.looseObject({
  type: z.literal('req'),
  id: z.string().min(1).max(1_024),
  method: z.string().min(1).max(256),
  params: z.unknown().optional(),
  traceparent: z.string().max(128).optional(),
  expectedProfileId: z.string().max(256).optional(),
});

const cancelFrame = z.looseObject({
  type: z.literal('cancel'),
  id: z.string().min(1).max(1_024),
});

export type Incoming =
  | { readonly kind: 'req'; readonly id: string; readonly method: string; readonly params: unknown }
  | { readonly kind: 'cancel'; readonly id: string }
  /** `id` is the frame's id when one could be read, else "invalid" (§1.2). */
  | { readonly kind: 'invalid'; readonly id: string; readonly message: string };

function frameId(value: unknown): string {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const id = (value as { id?: unknown }).id;
    if (typeof id === 'string' && id.length > 0 && id.length <= 1_024) return id;
  }
  return 'invalid';
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/** Parses one text frame. Never throws. */
export function parseFrame(text: string): Incoming {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', id: 'invalid', message: 'invalid request frame: not valid JSON' };
  }
  const type =
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as { type?: unknown }).type
      : undefined;
  if (type === 'cancel') {
    const parsed = cancelFrame.safeParse(value);
    return parsed.success
      ? { kind: 'cancel', id: parsed.data.id }
      : {
          kind: 'invalid',
          id: frameId(value),
          message: `invalid request frame: ${describeIssues(parsed.error)}`,
        };
  }
  const parsed = requestFrame.safeParse(value);
  if (!parsed.success)
    return {
      kind: 'invalid',
      id: frameId(value),
      message:
        type === 'req' || type === undefined
          ? `invalid request frame: ${describeIssues(parsed.error)}`
          : `invalid request frame: type must be "req" or "cancel" (got ${typeof type === 'string' ? JSON.stringify(type.slice(0, 40)) : typeof type})`,
    };
  return {
    kind: 'req',
    id: parsed.data.id,
    method: parsed.data.method,
    params: parsed.data.params,
  };
}

export function resFrame(id: string, payload: unknown): string {
  return JSON.stringify(
    payload === undefined ? { type: 'res', id, ok: true } : { type: 'res', id, ok: true, payload },
  );
}

export function errorFrame(id: string, error: ErrorShape, payload?: unknown): string {
  return JSON.stringify(
    payload === undefined
      ? { type: 'res', id, ok: false, error }
      : { type: 'res', id, ok: false, payload, error },
  );
}

export function eventFrame(
  event: string,
  payload: unknown,
  seq?: number,
  stateVersion?: { presence: number; health: number },
): string {
  return JSON.stringify({
    type: 'event',
    event,
    ...(payload === undefined ? {} : { payload }),
    ...(seq === undefined ? {} : { seq }),
    ...(stateVersion ? { stateVersion } : {}),
  });
}

/** §1.4: a close reason is at most 120 UTF-8 bytes, cut at a character boundary. */
export function closeReason(reason: string): string {
  if (reason === '') return 'invalid handshake';
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > LIMITS.closeReasonBytes) break;
    out += ch;
    bytes += size;
  }
  return out;
}

/** Params that may be absent, `{}` or `null` for methods without parameters (§4). */
export function paramsObject(params: unknown): Record<string, unknown> | null {
  if (params === undefined || params === null) return {};
  if (typeof params === 'object' && !Array.isArray(params))
    return params as Record<string, unknown>;
  return null;
}
