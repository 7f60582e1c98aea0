/** `WardenError` → an HTTP error response `{error: {code, message, retryable, details?}}`. */
import type { ServerResponse } from 'node:http';

import { coerceError, ERROR_CATALOGUE } from '../../core/index.ts';

/**
 * Answers `error` (anything thrown; foreign errors become INTERNAL) with its catalogue status
 * and a JSON body. Does nothing when the headers were sent already: a streaming response
 * reports its errors in-band.
 */
export function sendHttpError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) return;
  const warden = coerceError(error);
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (warden.retryAfterMs !== undefined) {
    headers['retry-after'] = String(Math.ceil(warden.retryAfterMs / 1000));
  }
  res.writeHead(ERROR_CATALOGUE[warden.code].http, headers);
  res.end(`${JSON.stringify({ error: warden.toJSON() })}\n`);
}
