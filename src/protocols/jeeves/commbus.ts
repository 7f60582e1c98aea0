/**
 * CommBusService onto the kernel's message bus (src/kernel/bus.ts): Publish fans out, Send and
 * Query go to the one handler of their type. Bus outcomes are in-band (`success`, `error`) as in
 * the original; a missing type is INVALID_ARGUMENT. Differences, on purpose: Send with no
 * handler is `success = false` (the original answered success), and a subscriber whose 100-message
 * buffer overflowed is told how many it missed — a `commbus.dropped` event `{missed}` before the
 * next one — instead of losing them silently (defect #22). The bus is per daemon: a subscriber
 * sees what is published through the node it is connected to.
 */
import { coerceError, WardenError } from '../../core/errors.ts';
import type { ServiceImpl } from './server.ts';
import { required } from './sessions.ts';

/** Messages a subscriber may fall behind by before they are dropped (the original's buffer). */
const SUBSCRIBER_BUFFER = 100;

export const DROPPED_EVENT = 'commbus.dropped';

export function commBusImpl(): ServiceImpl {
  return {
    Publish: {
      acp: 'task.submit',
      unary: async (req, ctx) => {
        const type = required(req.event_type, 'event_type');
        const payload = payloadOf(req.payload);
        ctx.services.kernel.bus.publish(type, payload);
        return Promise.resolve({ success: true, error: '' });
      },
    },
    Send: {
      acp: 'task.submit',
      unary: async (req, ctx) => {
        const type = required(req.command_type, 'command_type');
        const payload = payloadOf(req.payload);
        try {
          await ctx.services.kernel.bus.send(type, payload);
          return { success: true, error: '' };
        } catch (error) {
          return { success: false, error: coerceError(error).message };
        }
      },
    },
    Query: {
      acp: 'task.submit',
      unary: async (req, ctx) => {
        const type = required(req.query_type, 'query_type');
        const payload = payloadOf(req.payload);
        const timeout =
          typeof req.timeout_ms === 'number' && req.timeout_ms > 0 ? req.timeout_ms : undefined;
        try {
          const result = await ctx.services.kernel.bus.query(type, payload, timeout);
          return { success: true, result: Buffer.from(JSON.stringify(result ?? null)), error: '' };
        } catch (error) {
          return { success: false, result: Buffer.alloc(0), error: coerceError(error).message };
        }
      },
    },
    Subscribe: {
      acp: 'events.subscribe',
      stream: async (req, ctx, write) => {
        const types = Array.isArray(req.event_types)
          ? (req.event_types as unknown[]).filter(
              (t): t is string => typeof t === 'string' && t !== '',
            )
          : [];
        if (types.length === 0) required('', 'event_types');
        const subscription = ctx.services.kernel.bus.subscribe(
          types,
          (message, missed) => {
            const now = Date.now();
            if (missed > 0)
              write({
                event_type: DROPPED_EVENT,
                payload: Buffer.from(JSON.stringify({ missed })),
                timestamp_ms: now,
              });
            write({
              event_type: message.type,
              payload: Buffer.from(JSON.stringify(message.payload ?? null)),
              timestamp_ms: now,
            });
          },
          SUBSCRIBER_BUFFER,
        );
        try {
          await new Promise<void>((resolve) => {
            if (ctx.signal.aborted) resolve();
            ctx.signal.addEventListener('abort', () => resolve(), { once: true });
          });
        } finally {
          subscription.unsubscribe();
        }
      },
    },
  };
}

/** A payload is JSON (an empty one is null); anything else is INVALID_ARGUMENT. */
function payloadOf(bytes: unknown): unknown {
  const buffer = bytes as Buffer | undefined;
  if (!buffer || buffer.length === 0) return null;
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buffer)) as unknown;
  } catch {
    throw new WardenError('INVALID_PARAMS', 'payload: expected UTF-8 JSON');
  }
}
