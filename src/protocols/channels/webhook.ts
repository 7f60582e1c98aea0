/**
 * The generic HTTP webhook channel: the one working channel driver (issue 14). A bridge — or any
 * program — posts signed JSON messages in, and replies go back as signed JSON posts.
 *
 * Inbound, one request (`handle`, routed by the daemon, e.g. `POST /channels/webhook/<name>`),
 * checked in this order, each failure answered as `{error: {code, message, retryable}}`:
 *
 *   1. POST only (405); the driver must be started (409 INVALID_STATE, retryable); at most
 *      `maxInFlight` requests at once (429 RATE_LIMITED, `retry-after`).
 *   2. Body ≤ `maxBodyBytes` (413 PAYLOAD_TOO_LARGE; the connection is closed).
 *   3. Authentication (401 UNAUTHORIZED): `x-warden-signature` must be the HMAC of the raw body
 *      (signature.ts), compared in constant time; a `x-warden-timestamp` (required with
 *      `requireTimestamp`) must be within `replayWindowMs` of now. Nothing before this point
 *      reads the body as JSON, so an unauthenticated sender learns nothing about parsing.
 *   4. JSON and the message schema (400 INVALID_PARAMS naming the field).
 *   5. Dedupe by `(accountId, messageId)`: a message seen within `dedupeTtlMs` gets the first
 *      outcome again (`duplicate: true`) and the sink is NOT called; one still being handled
 *      is awaited, not run twice. A sink failure forgets the id, so the sender can retry.
 *   6. The text is scored by the prompt-injection guard. A `block` verdict is answered
 *      `{status: 'blocked'}` by the driver itself and the sink is never called; otherwise the
 *      sink gets the message (with its session key) and the score, and decides.
 *   7. 202 with the outcome: `{status, runId?, sessionKey?, reason?, messageId, duplicate}`.
 *
 * Outbound (`send`): the text is split at `maxTextChars` (text-split.ts) and each part is one
 * signed POST `{to, text, threadId?, replyToId?, part?, parts?}` to the message's callback URL,
 * else the configured `replyUrl`, through the SSRF-guarded client (safe-fetch.ts): loopback,
 * private, link-local and metadata addresses are refused unless `allowPrivateNetwork` (which
 * opens loopback and private ranges, never cloud metadata); redirects are refused; each post
 * has `sendTimeoutMs`. A part answered with a non-2xx status stops the send (TOOL_ERROR):
 * parts before it were delivered, and a retry sends them again.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { z } from 'zod';

import { checkParams, coerceError, isWardenError, WardenError } from '../../core/index.ts';
import { type InjectionScore, scoreInjection } from '../../security/guards/prompt-injection.ts';
import { guardedFetch } from '../../security/guards/safe-fetch.ts';
import { sendHttpError } from '../http/index.ts';
import { InboundDedupe } from './inbound-dedupe.ts';
import { CHANNEL_DESCRIPTORS, sessionKeyFor } from './registry.ts';
import {
  SIGNATURE_HEADER,
  signWebhookPayload,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
} from './signature.ts';
import { splitText } from './text-split.ts';
import {
  type ChannelCapabilities,
  type ChannelDriver,
  CHAT_TYPES,
  type InboundMessage,
  type InboundOutcome,
  type InboundSink,
  type OutboundMessage,
} from './types.ts';
import {
  HTTP_URL,
  PRIVATE_NETWORK_CIDRS,
  type ResolvedWebhookOptions,
  type WebhookChannelOptions,
  webhookOptionsSchema,
} from './webhook-config.ts';

// The config surface lives in webhook-config.ts; re-exported here, where the driver is.
export {
  MIN_WEBHOOK_SECRET_CHARS,
  PRIVATE_NETWORK_CIDRS,
  type WebhookChannelConfig,
  webhookChannelConfigSchema,
  type WebhookChannelOptions,
  webhookOptionsFromConfig,
} from './webhook-config.ts';

const messageId = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\s\p{Cc}]+$/u, 'expected an id without spaces or control characters');

/** The inbound JSON body (unknown keys are refused, so a misspelt field is not ignored). */
const inboundSchema = z
  .strictObject({
    messageId,
    from: messageId,
    text: z.string().refine((s) => s.trim() !== '', 'expected non-empty text'),
    chatType: z.enum(CHAT_TYPES).default('direct'),
    groupId: messageId.optional(),
    threadId: messageId.optional(),
    mentioned: z.boolean().optional(),
    replyToBot: z.boolean().optional(),
    accountId: messageId.optional(),
    callbackUrl: HTTP_URL.optional(),
  })
  .refine((b) => b.chatType !== 'group' || b.groupId !== undefined, {
    path: ['groupId'],
    message: 'expected a group id when chatType is "group"',
  });
type InboundBody = z.output<typeof inboundSchema>;

const outboundSchema = z.object({
  channel: z.literal('webhook'),
  to: z.string().min(1),
  text: z.string().min(1),
  threadId: z.string().min(1).optional(),
  replyToId: z.string().min(1).optional(),
  replyTo: z.object({ url: HTTP_URL }).optional(),
});

const CLEAN: InjectionScore = Object.freeze({ score: 0, verdict: 'clean', signals: [] });
const RETRY_AFTER_MS = 1000;

interface Received {
  readonly outcome: InboundOutcome;
  readonly duplicate: boolean;
}

/** The generic webhook channel driver (module comment). */
export class WebhookChannel implements ChannelDriver {
  readonly id: string;
  readonly kind = 'webhook' as const;
  readonly name: string;
  readonly capabilities: ChannelCapabilities;
  /** The HTTP handler for the daemon's route; never rejects (errors are answered). */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  readonly #o: ResolvedWebhookOptions;
  readonly #dedupe: InboundDedupe<Promise<InboundOutcome>>;
  readonly #tasks = new Set<Promise<void>>();
  #sink: InboundSink | null = null;

  /** @throws WardenError INVALID_PARAMS naming the bad option. */
  constructor(options: WebhookChannelOptions) {
    this.#o = Object.freeze(checkParams('new WebhookChannel', webhookOptionsSchema, options));
    this.name = this.#o.name;
    this.id = `webhook:${this.#o.name}`;
    this.capabilities = Object.freeze({
      ...CHANNEL_DESCRIPTORS.webhook.capabilities,
      maxTextChars: this.#o.maxTextChars,
    });
    this.#dedupe = new InboundDedupe({
      ttlMs: this.#o.dedupeTtlMs,
      maxEntries: this.#o.dedupeMaxEntries,
    });
    this.handle = (req, res) => this.#handle(req, res);
  }

  /** Requests being handled now. */
  get inFlight(): number {
    return this.#tasks.size;
  }

  start(sink: InboundSink): Promise<void> {
    this.#sink = sink;
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.#sink = null;
    await Promise.allSettled([...this.#tasks]);
  }

  /**
   * Delivers `msg` (split into parts when longer than `maxTextChars`), in order.
   *
   * @throws WardenError INVALID_PARAMS for a bad message or when there is no reply URL;
   *   GUARD_BLOCKED when the SSRF guard refuses the URL (or it redirects); TOOL_ERROR when a
   *   post fails, times out or is answered with a non-2xx status (`details.delivered` parts
   *   went through).
   */
  async send(msg: OutboundMessage): Promise<void> {
    checkParams(`${this.id} send`, outboundSchema, msg);
    const url = msg.replyTo?.url ?? this.#o.replyUrl;
    if (url === undefined) {
      throw new WardenError(
        'INVALID_PARAMS',
        `${this.id} send: no reply URL: the message has no replyTo.url and the channel has no reply_url; configure reply_url or have the sender pass callbackUrl`,
        { details: { channel: this.id } },
      );
    }
    const parts = splitText(msg.text, this.#o.maxTextChars);
    for (const [index, text] of parts.entries()) {
      const body = JSON.stringify({
        to: msg.to,
        text,
        ...(msg.threadId === undefined ? {} : { threadId: msg.threadId }),
        ...(msg.replyToId === undefined ? {} : { replyToId: msg.replyToId }),
        ...(parts.length > 1 ? { part: index + 1, parts: parts.length } : {}),
      });
      await this.#post(url, body, { part: index + 1, parts: parts.length, delivered: index });
    }
  }

  async #post(url: string, body: string, where: Record<string, number>): Promise<void> {
    const timestamp = String(Math.floor(this.#o.clock.now() / 1000));
    const host = new URL(url).host;
    let status: number;
    try {
      const response = await guardedFetch(
        {
          url,
          method: 'POST',
          headers: {
            'content-type': 'application/json; charset=utf-8',
            [SIGNATURE_HEADER]: signWebhookPayload(this.#o.secret, body, timestamp),
            [TIMESTAMP_HEADER]: timestamp,
          },
          body,
        },
        {
          allow: this.#o.allowPrivateNetwork ? [...PRIVATE_NETWORK_CIDRS] : [],
          maxRedirects: 0,
          maxBytes: 64 * 1024,
          timeoutMs: this.#o.sendTimeoutMs,
          ...(this.#o.resolve === undefined ? {} : { resolve: this.#o.resolve }),
        },
      );
      status = response.status;
    } catch (error) {
      const e = coerceError(error, 'TOOL_ERROR');
      throw new WardenError(
        e.code,
        `${this.id}: reply part ${where.part}/${where.parts} to ${host} not delivered: ${e.message}`,
        {
          cause: e,
          details: { ...e.details, channel: this.id, ...where },
        },
      );
    }
    if (status < 200 || status > 299) {
      throw new WardenError(
        'TOOL_ERROR',
        `${this.id}: ${host} answered HTTP ${status} to reply part ${where.part}/${where.parts}; check the receiver (it must answer 2xx)`,
        { details: { channel: this.id, status, ...where } },
      );
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      res.writeHead(405, JSON_TYPE);
      res.end(errorBody('INVALID_PARAMS', `${this.id}: use POST (got ${req.method ?? '?'})`));
      return;
    }
    const sink = this.#sink;
    if (sink === null) {
      return sendHttpError(
        res,
        new WardenError('INVALID_STATE', `${this.id} is not running; retry later`, {
          retryable: true,
          retryAfterMs: RETRY_AFTER_MS,
        }),
      );
    }
    if (this.#tasks.size >= this.#o.maxInFlight) {
      res.setHeader('connection', 'close');
      return sendHttpError(
        res,
        new WardenError(
          'RATE_LIMITED',
          `${this.id}: ${this.#o.maxInFlight} requests are in flight already; retry after retry_after_ms`,
          { retryAfterMs: RETRY_AFTER_MS, details: { max_in_flight: this.#o.maxInFlight } },
        ),
      );
    }
    const task = this.#serve(req, res, sink);
    this.#tasks.add(task);
    try {
      await task;
    } finally {
      this.#tasks.delete(task);
    }
  }

  async #serve(req: IncomingMessage, res: ServerResponse, sink: InboundSink): Promise<void> {
    try {
      const raw = await readBody(req, this.#o.maxBodyBytes, this.id);
      this.#authenticate(req, raw);
      const body = checkParams(`${this.id} message`, inboundSchema, parseJson(raw, this.id));
      const { outcome, duplicate } = await this.#receive(body, sink);
      res.writeHead(202, JSON_TYPE);
      res.end(`${JSON.stringify({ ...outcome, messageId: body.messageId, duplicate })}\n`);
    } catch (error) {
      if (isWardenError(error, 'PAYLOAD_TOO_LARGE')) res.setHeader('connection', 'close');
      sendHttpError(res, error);
    }
  }

  /** Step 3 of the module comment. */
  #authenticate(req: IncomingMessage, raw: Buffer): void {
    const signature = header(req, SIGNATURE_HEADER);
    const timestamp = header(req, TIMESTAMP_HEADER);
    if (signature === undefined) {
      throw unauthorized(
        `${this.id}: missing ${SIGNATURE_HEADER}; send sha256=<hex HMAC-SHA256 of the raw body with the channel secret>`,
      );
    }
    if (timestamp === undefined && this.#o.requireTimestamp) {
      throw unauthorized(
        `${this.id}: missing ${TIMESTAMP_HEADER}; this channel requires one (unix seconds, signed as "<timestamp>.<body>")`,
      );
    }
    if (!verifyWebhookSignature(this.#o.secret, raw, signature, timestamp)) {
      throw unauthorized(
        `${this.id}: ${SIGNATURE_HEADER} does not match the body; sign the exact bytes sent${timestamp === undefined ? '' : ' prefixed by "<timestamp>."'} with the channel secret`,
      );
    }
    if (timestamp === undefined) return;
    const sentMs = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) * 1000 : Number.NaN;
    const skewMs = Math.abs(this.#o.clock.now() - sentMs);
    if (!(skewMs <= this.#o.replayWindowMs)) {
      throw unauthorized(
        `${this.id}: ${TIMESTAMP_HEADER} is outside the ${this.#o.replayWindowMs / 1000} s replay window (unix seconds expected); sign with the current time and check the sender's clock`,
      );
    }
  }

  /** Steps 5 and 6 of the module comment. */
  async #receive(body: InboundBody, sink: InboundSink): Promise<Received> {
    const accountId = body.accountId ?? this.name;
    const key = `${accountId}\n${body.messageId}`;
    const now = this.#o.clock.now();
    const prior = this.#dedupe.get(key, now);
    if (prior !== undefined) return { outcome: await prior, duplicate: true };
    const msg = this.#message(body, accountId, now);
    const guard = this.#score(msg.text);
    let outcome: Promise<InboundOutcome>;
    if (guard.verdict === 'block') {
      this.#o.onBlocked?.(msg, guard);
      outcome = Promise.resolve({
        status: 'blocked',
        reason: `blocked by the prompt-injection guard (score ${guard.score})`,
      });
    } else {
      outcome = Promise.resolve().then(() => sink(msg, guard));
    }
    this.#dedupe.set(key, outcome, now);
    try {
      return { outcome: await outcome, duplicate: false };
    } catch (error) {
      this.#dedupe.delete(key, outcome);
      throw coerceError(error);
    }
  }

  #message(body: InboundBody, accountId: string, receivedAt: number): InboundMessage {
    const route = {
      channel: 'webhook' as const,
      accountId,
      from: body.from,
      chatType: body.chatType,
      ...(body.chatType === 'group' ? { groupId: body.groupId } : {}),
      ...(body.threadId === undefined ? {} : { threadId: body.threadId }),
    };
    const sessionKey = sessionKeyFor(route, {
      agentId: this.#o.agentId,
      dmScope: this.#o.dmScope,
      mainKey: this.#o.mainKey,
    });
    return {
      ...route,
      text: body.text,
      messageId: body.messageId,
      ...(body.mentioned === undefined ? {} : { mentioned: body.mentioned }),
      ...(body.replyToBot === undefined ? {} : { replyToBot: body.replyToBot }),
      ...(body.callbackUrl === undefined ? {} : { replyTo: { url: body.callbackUrl } }),
      receivedAt,
      agentId: this.#o.agentId.toLowerCase(),
      sessionKey,
    };
  }

  #score(text: string): InjectionScore {
    const { mode, reviewAt, blockAt } = this.#o.injection;
    if (mode === 'off') return CLEAN;
    return scoreInjection(text, {
      ...(reviewAt === undefined ? {} : { reviewAt }),
      ...(blockAt === undefined ? {} : { blockAt }),
    });
  }
}

const JSON_TYPE = { 'content-type': 'application/json; charset=utf-8' } as const;

function errorBody(code: string, message: string): string {
  return `${JSON.stringify({ error: { code, message, retryable: false } })}\n`;
}

function unauthorized(message: string): WardenError {
  return new WardenError('UNAUTHORIZED', message);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function parseJson(raw: Buffer, where: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new WardenError('INVALID_PARAMS', `${where}: the body is not valid JSON (${reason})`, {
      details: { where },
    });
  }
}

/**
 * The request body, at most `limit` bytes. A declared `content-length` over it fails before
 * reading; a longer stream stops being collected at the limit (the rest is discarded, and the
 * caller closes the connection).
 */
function readBody(req: IncomingMessage, limit: number, where: string): Promise<Buffer> {
  const tooLarge = (what: string) =>
    new WardenError(
      'PAYLOAD_TOO_LARGE',
      `${where}: the body is larger than ${limit} bytes (${what}); send smaller messages`,
      { details: { where, max_bytes: limit } },
    );
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(`content-length ${declared}`));
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        cleanup();
        req.resume();
        reject(tooLarge(`at least ${total} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
  });
}
