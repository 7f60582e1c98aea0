/**
 * Chat and agent methods (reference §4.15–§4.18, §4.19, §4.20, §6.4): `chat.send`,
 * `sessions.send`, `sessions.steer`, `agent` (two-phase), `agent.wait`, `chat.abort`,
 * `sessions.abort`, `chat.history`, `sessions.history`, `session.status`.
 * A message becomes a turn of the session (turns.ts); `idempotencyKey` is deduplicated durably
 * (dedupe.ts), and `runId` is the `idempotencyKey`.
 */
import { z } from 'zod';

import { canonicalSessionKey, QUEUE_MODES, type QueueMode } from '../../../core/openclaw/index.ts';
import type { Kernel } from '../../../kernel/index.ts';
import { type ProcessRecord, waitForChange } from '../../../store/index.ts';
import type { MethodCall, MethodHandler } from '../connection.ts';
import type { Dedupe, DedupeEntry } from '../dedupe.ts';
import { replyText } from '../event-bridge.ts';
import { gatewayError, GatewayFailure, invalidRequest, toErrorShape } from '../frames.ts';
import { findSession, gatewaySession, wardenModel } from '../session-records.ts';
import { chatMessages, runStatus, sessionRuns, transcriptOf } from '../transcript.ts';
import { claimTurn } from '../turn-claim.ts';
import type { RunRef, Turns } from '../turns.ts';

export interface ChatMethodsOptions {
  readonly turns: Turns;
  readonly dedupe: Dedupe;
  /** The default queue mode (`followup` unless configured). */
  readonly queueMode: () => QueueMode;
}

function parse<T>(method: string, schema: z.ZodType<T>, params: unknown): T {
  const parsed = schema.safeParse(params);
  if (parsed.success) return parsed.data;
  const what = parsed.error.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
  throw invalidRequest(`invalid ${method} params: ${what}`);
}

const idempotencyKey = z.string().min(1).max(512);
const agentId = z.string().min(1).max(64).optional();
const queueMode = z.enum(QUEUE_MODES as unknown as [QueueMode, ...QueueMode[]]).optional();
const attachments = z.array(z.unknown()).max(32).optional();

const chatSendParams = z.looseObject({
  sessionKey: z.string().max(512),
  message: z.string().max(1_000_000),
  idempotencyKey,
  agentId,
  queueMode,
  attachments,
  timeoutMs: z.number().int().min(1).optional(),
});

const sessionsSendParams = z.looseObject({
  key: z.string().max(512),
  message: z.string().max(1_000_000),
  idempotencyKey: idempotencyKey.optional(),
  agentId,
  attachments,
  timeoutMs: z.number().int().min(1).optional(),
});

const agentParams = z.looseObject({
  message: z.string().min(1).max(1_000_000),
  idempotencyKey,
  agentId,
  sessionKey: z.string().max(512).optional(),
  model: z.string().min(1).max(256).optional(),
  provider: z.string().min(1).max(256).optional(),
  timeout: z.number().min(0).max(86_400).optional(),
  attachments,
});

const agentWaitParams = z.looseObject({
  runId: z.string().min(1).max(512),
  timeoutMs: z.number().int().min(0).max(3_600_000).optional(),
});

const chatAbortParams = z.looseObject({
  sessionKey: z.string().max(512),
  runId: z.string().min(1).max(512).optional(),
  agentId,
});

const sessionsAbortParams = z.looseObject({
  key: z.string().max(512).optional(),
  runId: z.string().min(1).max(512).optional(),
  agentId,
  clearQueued: z.boolean().optional(),
});

const chatHistoryParams = z.looseObject({
  sessionKey: z.string().max(512),
  agentId,
  limit: z.number().int().min(1).max(1_000).optional(),
  maxChars: z.number().int().min(1).optional(),
});

const sessionsHistoryParams = z.looseObject({
  key: z.string().max(512).optional(),
  sessionKey: z.string().max(512).optional(),
  sessionId: z.string().max(512).optional(),
  agentId,
  limit: z.number().int().min(1).max(1_000).optional(),
});

const sessionStatusParams = z.looseObject({
  sessionKey: z.string().max(512).optional(),
  key: z.string().max(512).optional(),
  agentId,
});

/** A session key from a request: aliases resolved, malformed keys refused (§6.1). */
export function requestKey(method: string, raw: string, agent?: string): string {
  try {
    return canonicalSessionKey(raw, agent === undefined ? {} : { agentId: agent });
  } catch (error) {
    throw invalidRequest(`invalid ${method} params: ${toErrorShape(error).message}`);
  }
}

function noAttachments(method: string, list: readonly unknown[] | undefined): void {
  if (list && list.length > 0)
    throw invalidRequest(
      `invalid ${method} params: attachments are not supported by this gateway (Warden runs text turns); send the content as text`,
    );
}

async function checkSendPolicy(kernel: Kernel, key: string): Promise<void> {
  const session = await findSession(kernel, key);
  if (session?.entry.sendPolicy === 'deny') throw invalidRequest('send blocked by session policy');
}

function sessionQueueMode(entryMode: unknown, fallback: QueueMode): QueueMode {
  return typeof entryMode === 'string' && (QUEUE_MODES as readonly string[]).includes(entryMode)
    ? (entryMode as QueueMode)
    : fallback;
}

/** Waits until the run a `runId` leads to has ended (or the deadline passes). */
async function waitForRun(
  call: MethodCall,
  turns: Turns,
  runId: string,
  deadline: number,
): Promise<{ ref: RunRef; run: ProcessRecord | null }> {
  const kernel = call.services.kernel;
  const found = await waitForChange(
    kernel.store,
    async () => {
      const ref = await turns.lookup(runId);
      if (ref?.dropped !== undefined) return { ref, run: null };
      if (!ref?.pid) return undefined;
      const run = await kernel.store.getProcess(ref.pid);
      if (run && runStatus(run) === 'running') return undefined;
      return { ref, run: run ?? null };
    },
    { deadline, now: Date.now, signal: call.signal },
  );
  if (found) return found;
  const ref = (await turns.lookup(runId)) ?? {
    runId,
    sessionKey: '',
    pid: null,
    queuedAt: Date.now(),
  };
  return { ref, run: null };
}

export function chatMethods(options: ChatMethodsOptions): Record<string, MethodHandler> {
  const { turns, dedupe } = options;

  /** Shared by chat.send, sessions.send and sessions.steer: one turn, acked at once. */
  async function send(
    call: MethodCall,
    key: string,
    message: string,
    runId: string,
    mode: QueueMode | undefined,
  ): Promise<Record<string, unknown>> {
    const kernel = call.services.kernel;
    if (/^\s*\/stop\s*$/i.test(message)) {
      const runIds = await turns.abort(key);
      return { ok: true, aborted: runIds.length > 0, runIds };
    }
    const dedupeKey = `chat:${runId}`;
    const now = Date.now();
    const claim = await claimTurn(dedupe, turns, dedupeKey, {
      ts: now,
      runId,
      pid: null,
      sessionKey: key,
    });
    if (!claim.first) return replayChat(kernel, dedupeKey, claim.entry);
    try {
      await checkSendPolicy(kernel, key);
      const session = await findSession(kernel, key);
      const outcome = await turns.submit({
        key,
        runId,
        message,
        mode: mode ?? sessionQueueMode(session?.entry.queueMode, options.queueMode()),
        origin: { kind: 'chat', user: call.connection.caller.name },
        ...(session && wardenModel(session.entry) ? { model: wardenModel(session.entry) } : {}),
      });
      const ack = {
        runId,
        status: 'started',
        ...(outcome.status === 'queued' ? { queued: { position: outcome.position } } : {}),
        ...(outcome.status === 'queued' && outcome.interrupted
          ? { interruptedActiveRun: true }
          : {}),
      };
      await dedupe.update(dedupeKey, {
        ts: now,
        state: 'pending',
        runId,
        pid: outcome.status === 'started' ? outcome.pid : null,
        sessionKey: key,
        ack,
      });
      return ack;
    } catch (error) {
      // Nothing started: a retry with the same key must be able to run.
      await dedupe.release(dedupeKey).catch(() => undefined);
      throw error;
    }
  }

  async function replayChat(
    kernel: Kernel,
    dedupeKey: string,
    entry: DedupeEntry,
  ): Promise<Record<string, unknown>> {
    if (entry.state === 'pending') {
      if (!(await turnOver(kernel, entry))) return { runId: entry.runId, status: 'in_flight' };
      // Settle it, so it replays from now on and the prune can drop it after the TTL.
      await dedupe.update(dedupeKey, { ...entry, state: 'done' }).catch(() => undefined);
    }
    if (entry.ok === false)
      throw new GatewayFailure(
        gatewayError('UNAVAILABLE', 'the original request failed', {
          code: 'CACHED_AGENT_RESULT',
          runId: entry.runId,
          originalDetails: entry.error,
        }),
      );
    return (entry.ack ?? { runId: entry.runId, status: 'started' }) as Record<string, unknown>;
  }

  /**
   * Whether the turn of a still-`pending` entry is over although nothing marked it done. Only
   * the head of a run's turn is marked when the run ends, so a message merged into another's
   * turn (`collect`), or replaced by a newer one (`steer`, `interrupt`) — which never runs —
   * would otherwise answer `in_flight` forever and never be pruned. An entry without its ack is
   * still being submitted, so it is in flight.
   */
  async function turnOver(kernel: Kernel, entry: DedupeEntry): Promise<boolean> {
    if (entry.ack === undefined) return false;
    const ref = await turns.lookup(entry.runId);
    if (!ref) return false;
    if (ref.pid) {
      const run = await kernel.store.getProcess(ref.pid);
      return run !== undefined && runStatus(run) !== 'running';
    }
    const queue = await turns.queueOf(ref.sessionKey);
    return queue.activeRunId !== entry.runId && !queue.pending.some((t) => t.id === entry.runId);
  }

  return {
    'chat.send': async (call) => {
      const p = parse('chat.send', chatSendParams, call.params);
      noAttachments('chat.send', p.attachments);
      if (p.message.trim() === '') throw invalidRequest('message or attachment required');
      const key = requestKey('chat.send', p.sessionKey, p.agentId);
      return send(call, key, p.message, p.idempotencyKey, p.queueMode);
    },
    'sessions.send': async (call) => {
      const p = parse('sessions.send', sessionsSendParams, call.params);
      noAttachments('sessions.send', p.attachments);
      if (p.message.trim() === '') throw invalidRequest('message or attachment required');
      const key = requestKey('sessions.send', p.key, p.agentId);
      return send(call, key, p.message, p.idempotencyKey ?? crypto.randomUUID(), undefined);
    },
    // Deprecated alias of chat.send with queueMode interrupt (§4.19).
    'sessions.steer': async (call) => {
      const p = parse('sessions.steer', chatSendParams, call.params);
      noAttachments('sessions.steer', p.attachments);
      if (p.message.trim() === '') throw invalidRequest('message or attachment required');
      const key = requestKey('sessions.steer', p.sessionKey, p.agentId);
      return send(call, key, p.message, p.idempotencyKey, 'interrupt');
    },

    agent: async (call) => {
      const p = parse('agent', agentParams, call.params);
      noAttachments('agent', p.attachments);
      const agent = p.agentId ?? 'main';
      const key = requestKey('agent', p.sessionKey ?? `agent:${agent}:main`, agent);
      const keyAgent = /^agent:([^:]+):/.exec(key)?.[1];
      if (p.agentId !== undefined && keyAgent !== undefined && keyAgent !== p.agentId.toLowerCase())
        throw invalidRequest(
          `invalid agent params: agent "${p.agentId}" does not match session key agent "${keyAgent}"`,
        );
      if (
        (p.model !== undefined || p.provider !== undefined) &&
        !call.connection.scopes.includes('operator.admin')
      )
        throw invalidRequest('provider/model overrides are not authorized for this caller.');
      const kernel = call.services.kernel;
      const runId = p.idempotencyKey;
      const dedupeKey = `agent:${runId}`;
      const acceptedAt = Date.now();
      const ack = {
        runId,
        sessionKey: key,
        agentId: keyAgent ?? agent,
        status: 'accepted',
        acceptedAt,
      };
      const claim = await claimTurn(dedupe, turns, dedupeKey, {
        ts: acceptedAt,
        runId,
        pid: null,
        sessionKey: key,
        ack,
      });
      if (!claim.first) {
        const entry = claim.entry;
        if (entry.state === 'done') return replayAgent(entry);
        // The first request is still running: ack as it did, then wait for the same run.
        call.ack(entry.ack ?? ack);
      } else {
        try {
          await checkSendPolicy(kernel, key);
          const session = await findSession(kernel, key);
          const model =
            p.model !== undefined
              ? p.provider
                ? `${p.provider}:${p.model}`
                : p.model
              : session
                ? wardenModel(session.entry)
                : undefined;
          await turns.submit({
            key,
            runId,
            message: p.message,
            mode: sessionQueueMode(session?.entry.queueMode, options.queueMode()),
            origin: { kind: 'agent', user: call.connection.caller.name },
            ...(model ? { model } : {}),
          });
        } catch (error) {
          await dedupe.release(dedupeKey).catch(() => undefined);
          throw error;
        }
        call.ack(ack);
      }
      const timeoutMs = (p.timeout ?? 600) * 1000;
      const { ref, run } = await waitForRun(call, turns, runId, Date.now() + timeoutMs);
      if (call.signal.aborted) throw invalidRequest('request cancelled');
      if (!run && ref.dropped === undefined) {
        throw new GatewayFailure(
          gatewayError(
            'UNAVAILABLE',
            `the run did not finish within ${p.timeout ?? 600}s`,
            {
              runId,
            },
            { retryable: true },
          ),
          { runId, status: 'timeout', summary: 'timeout' },
        );
      }
      const final = run ? finalOf(runId, run) : droppedFinal(runId, ref.dropped ?? 'dropped');
      await dedupe
        .update(dedupeKey, {
          ts: acceptedAt,
          state: 'done',
          runId,
          pid: run?.pid ?? null,
          sessionKey: key,
          ack,
          ok: final.ok,
          payload: final.payload,
          ...(final.ok ? {} : { error: final.error }),
        })
        .catch(() => undefined);
      if (!final.ok) throw new GatewayFailure(final.error, final.payload);
      return final.payload;
    },

    'agent.wait': async (call) => {
      const p = parse('agent.wait', agentWaitParams, call.params);
      const ref = await turns.lookup(p.runId);
      if (!ref) throw invalidRequest(`unknown runId: ${p.runId}`);
      const { ref: waited, run } = await waitForRun(
        call,
        turns,
        p.runId,
        Date.now() + (p.timeoutMs ?? 30_000),
      );
      if (waited.dropped !== undefined)
        return { runId: p.runId, status: 'error', error: `never ran: ${waited.dropped}` };
      if (!run) return { runId: p.runId, status: 'timeout' };
      const status = runStatus(run);
      return {
        runId: p.runId,
        status: status === 'done' ? 'ok' : 'error',
        ...(run.started_at === null ? {} : { startedAt: run.started_at }),
        ...(run.completed_at === null ? {} : { endedAt: run.completed_at }),
        ...(status === 'done' ? {} : { error: run.terminal_message ?? run.terminal_reason }),
      };
    },

    'chat.abort': async (call) => {
      const p = parse('chat.abort', chatAbortParams, call.params);
      const key = requestKey('chat.abort', p.sessionKey, p.agentId);
      if (p.runId !== undefined) {
        const ref = await turns.lookup(p.runId);
        if (!ref) return { ok: true, aborted: false, runIds: [] };
        if (ref.sessionKey !== key) throw invalidRequest('runId does not match sessionKey');
      }
      const runIds = await turns.abort(key, p.runId);
      return { ok: true, aborted: runIds.length > 0, runIds };
    },

    'sessions.abort': async (call) => {
      const p = parse('sessions.abort', sessionsAbortParams, call.params);
      let key: string;
      if (p.key !== undefined) key = requestKey('sessions.abort', p.key, p.agentId);
      else if (p.runId !== undefined) {
        const ref = await turns.lookup(p.runId);
        if (!ref) return { ok: true, abortedRunId: null, status: 'no-active-run' };
        key = ref.sessionKey;
      } else throw invalidRequest('invalid sessions.abort params: key or runId required');
      const queue = await turns.queueOf(key);
      const target = p.runId ?? queue.activeRunId ?? undefined;
      if (target === undefined) return { ok: true, abortedRunId: null, status: 'no-active-run' };
      const aborted =
        p.clearQueued === true ? await turns.abort(key) : await turns.abort(key, target);
      const active = aborted.includes(target) ? target : null;
      return { ok: true, abortedRunId: active, status: active ? 'aborted' : 'no-active-run' };
    },

    'chat.history': async (call) => {
      const p = parse('chat.history', chatHistoryParams, call.params);
      const key = requestKey('chat.history', p.sessionKey, p.agentId);
      const session = await findSession(call.services.kernel, key);
      if (!session) return { sessionKey: key, messages: [] };
      const messages = transcriptOf(await sessionRuns(call.services.kernel, session));
      return {
        sessionKey: key,
        sessionId: session.entry.sessionId,
        messages: chatMessages(messages, p.limit ?? 200, p.maxChars),
        ...(session.entry.thinkingLevel ? { thinkingLevel: session.entry.thinkingLevel } : {}),
      };
    },

    // The Rust rewrite's transcript method (§4.20): by key alias or sessionId.
    'sessions.history': async (call) => {
      const p = parse('sessions.history', sessionsHistoryParams, call.params);
      const kernel = call.services.kernel;
      let session = null;
      if (p.sessionId !== undefined) {
        const all = await kernel.store.listSessions();
        const match = all.map(gatewaySession).find((s) => s.entry.sessionId === p.sessionId);
        session = match ?? null;
      } else {
        const raw = p.key ?? p.sessionKey;
        if (raw === undefined)
          throw invalidRequest(
            'invalid sessions.history params: key, sessionKey or sessionId required',
          );
        session = await findSession(kernel, requestKey('sessions.history', raw, p.agentId));
      }
      if (!session)
        throw invalidRequest(`No session found: ${p.sessionId ?? p.key ?? p.sessionKey ?? ''}`);
      const messages = transcriptOf(await sessionRuns(kernel, session));
      return {
        key: session.key,
        sessionId: session.entry.sessionId,
        messages: chatMessages(messages, p.limit ?? 200, undefined),
      };
    },

    // The Rust rewrite's `session.status` (alias `sessions.status`, §4.20).
    'session.status': (call) => sessionStatus(call),
    'sessions.status': (call) => sessionStatus(call),
  };

  async function sessionStatus(call: MethodCall): Promise<Record<string, unknown>> {
    const p = parse(call.method, sessionStatusParams, call.params);
    const kernel = call.services.kernel;
    const raw = p.sessionKey ?? p.key;
    if (raw === undefined) {
      const sessions = (await kernel.store.listSessions()).filter((s) => s.key !== 'system');
      const running = await kernel.store.listProcesses({
        states: ['new', 'ready', 'running', 'waiting', 'blocked'],
        limit: 10_000,
      });
      return { summary: { sessions: sessions.length, activeRuns: running.length } };
    }
    const key = requestKey(call.method, raw, p.agentId);
    const session = await findSession(kernel, key);
    if (!session) throw invalidRequest(`No session found: ${key}`);
    const queue = await turns.queueOf(key);
    const runs = await sessionRuns(kernel, session);
    const last = runs.at(-1);
    return {
      session: {
        ...session.entry,
        key,
        updatedAt: session.session.updated_at,
        activeRunId: queue.activeRunId,
        queued: queue.pending.length,
        status: last ? statusWord(last) : 'idle',
        inputTokens: runs.reduce((n, r) => n + r.usage.input_tokens, 0),
        outputTokens: runs.reduce((n, r) => n + r.usage.output_tokens, 0),
      },
    };
  }
}

function statusWord(run: ProcessRecord): string {
  const s = runStatus(run);
  return s === 'running' ? 'running' : s;
}

function replayAgent(entry: DedupeEntry): unknown {
  if (entry.ok === false) {
    const error = entry.error as { code?: string; message?: string; details?: unknown } | undefined;
    throw new GatewayFailure(
      gatewayError('UNAVAILABLE', error?.message ?? 'the original run failed', {
        code: 'CACHED_AGENT_RESULT',
        runId: entry.runId,
        ...(error?.details ? { originalDetails: error.details } : {}),
      }),
      entry.payload,
    );
  }
  return entry.payload;
}

/** The `agent` final of a message that never ran: an error, at once (not a timeout). */
function droppedFinal(runId: string, reason: string): ReturnType<typeof finalOf> {
  const summary = `never ran: ${reason}`;
  return {
    ok: false,
    payload: { runId, status: 'error', summary },
    error: gatewayError('UNAVAILABLE', `the message ${summary}`, { runId, reason: 'dropped' }),
  };
}

function finalOf(
  runId: string,
  run: ProcessRecord,
):
  | { ok: true; payload: Record<string, unknown> }
  | { ok: false; payload: Record<string, unknown>; error: ReturnType<typeof gatewayError> } {
  const status = runStatus(run);
  const durationMs = (run.completed_at ?? Date.now()) - (run.started_at ?? run.created_at);
  if (status === 'done')
    return {
      ok: true,
      payload: {
        runId,
        status: 'ok',
        summary: 'completed',
        result: {
          payloads: [{ text: replyText(run) }],
          meta: {
            durationMs,
            pid: run.pid,
            usage: { input: run.usage.input_tokens, output: run.usage.output_tokens },
          },
        },
      },
    };
  const summary = run.terminal_message ?? run.terminal_reason ?? 'failed';
  return {
    ok: false,
    payload: { runId, status: 'error', summary },
    error: gatewayError('UNAVAILABLE', summary, { runId, reason: run.terminal_reason }),
  };
}
