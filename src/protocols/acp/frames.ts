/**
 * JSON-RPC 2.0 framing for ACP: parsing a text frame into a request, a notification or a
 * well-formed error, and building responses. Never throws on input: every malformed frame gets
 * an answer that says what was wrong.
 */
import { ERROR_CATALOGUE, isWardenError, WardenError } from '../../core/index.ts';

export type RequestId = string | number;

export type Incoming =
  | {
      readonly kind: 'call';
      readonly id: RequestId | null;
      readonly method: string;
      readonly params: unknown;
    }
  | { readonly kind: 'invalid'; readonly id: RequestId | null; readonly error: RpcError };

export interface RpcError {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

export const RPC = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL: -32603,
  APPLICATION: -32000,
} as const;

function wardenData(code: keyof typeof ERROR_CATALOGUE, message: string): RpcError['data'] {
  return { code, message, retryable: false };
}

function invalidRequest(id: RequestId | null, message: string): Incoming {
  return {
    kind: 'invalid',
    id,
    error: { code: RPC.INVALID_REQUEST, message, data: wardenData('INVALID_PARAMS', message) },
  };
}

/** `id` is null for a notification (no `id` member). */
export function parseFrame(text: string): Incoming {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const message = `parse error: the frame is not JSON (${(error as Error).message})`;
    return {
      kind: 'invalid',
      id: null,
      error: { code: RPC.PARSE_ERROR, message, data: wardenData('INVALID_PARAMS', message) },
    };
  }
  if (Array.isArray(value))
    return invalidRequest(null, 'batches are not supported: send one request per frame');
  if (typeof value !== 'object' || value === null)
    return invalidRequest(null, 'expected a JSON-RPC 2.0 request object');
  const frame = value as Record<string, unknown>;
  const rawId = frame.id;
  const idOk =
    rawId === undefined ||
    (typeof rawId === 'string' && rawId.length <= 256) ||
    (typeof rawId === 'number' && Number.isFinite(rawId));
  const id = idOk && rawId !== undefined ? rawId : null;
  if (!idOk) return invalidRequest(null, 'id must be a string (≤ 256 chars), a number or absent');
  if (frame.jsonrpc !== '2.0') return invalidRequest(id, 'jsonrpc must be "2.0"');
  if (typeof frame.method !== 'string' || frame.method.length === 0 || frame.method.length > 128)
    return invalidRequest(id, 'method must be a non-empty string');
  const params = frame.params;
  if (
    params !== undefined &&
    (typeof params !== 'object' || params === null || Array.isArray(params))
  )
    return invalidRequest(id, 'params must be an object (by-name parameters) or absent');
  for (const key of Object.keys(frame))
    if (key !== 'jsonrpc' && key !== 'id' && key !== 'method' && key !== 'params')
      return invalidRequest(id, `unknown member '${key.slice(0, 64)}' in the request`);
  return { kind: 'call', id: rawId === undefined ? null : id, method: frame.method, params };
}

/** The JSON-RPC error for any thrown value; internals are never leaked. */
export function toRpcError(error: unknown): RpcError {
  const warden = isWardenError(error)
    ? error
    : new WardenError('INTERNAL', 'internal error; the operation changed nothing');
  const code =
    warden.code === 'INVALID_PARAMS' ? RPC.INVALID_PARAMS : ERROR_CATALOGUE[warden.code].jsonrpc;
  return { code, message: warden.message, data: warden.toJSON() };
}

export function methodNotFound(method: string): RpcError {
  const message = `method '${method.slice(0, 128)}' does not exist (see docs/protocol/acp.md)`;
  return { code: RPC.METHOD_NOT_FOUND, message, data: wardenData('NOT_FOUND', message) };
}

export function response(id: RequestId, result: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', id, result: result ?? null });
}

export function errorResponse(id: RequestId | null, error: RpcError): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error });
}

export function notification(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params });
}
