/**
 * Webhook request signatures, both directions: `x-warden-signature: sha256=<hex>` is the
 * HMAC-SHA256, keyed with the channel's secret, of the raw body — or, when the request carries
 * `x-warden-timestamp: <unix seconds>`, of `<timestamp>.<raw body>`, so a captured request
 * cannot be replayed later under a fresh timestamp (the scheme Stripe and Slack use).
 */
import { createHmac } from 'node:crypto';

import { sameSecret } from '../../security/index.ts';

export const SIGNATURE_HEADER = 'x-warden-signature';
export const TIMESTAMP_HEADER = 'x-warden-timestamp';

/** `sha256=<64 lower-case hex>` for `body` (and `timestamp`, when given). */
export function signWebhookPayload(
  secret: string,
  body: string | Uint8Array,
  timestamp?: string,
): string {
  const hmac = createHmac('sha256', secret);
  if (timestamp !== undefined) hmac.update(`${timestamp}.`, 'utf8');
  hmac.update(body);
  return `sha256=${hmac.digest('hex')}`;
}

/** True when `presented` is the signature of `body` (and `timestamp`); constant time. */
export function verifyWebhookSignature(
  secret: string,
  body: Uint8Array,
  presented: string,
  timestamp?: string,
): boolean {
  const expected = signWebhookPayload(secret, body, timestamp);
  // Hex case is not significant; sameSecret compares digests, so length leaks nothing.
  return sameSecret(presented.trim().toLowerCase(), expected);
}
