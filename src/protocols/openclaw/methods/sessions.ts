/**
 * Session methods (reference §4.5–§4.14, §4.19, §4.20; the Rust rewrite's parity rules in
 * seeds/004): `sessions.list|preview|resolve|describe|get|patch|reset|delete|compact`, and the
 * usage reports `usage.status|cost`, `sessions.usage|usage.timeseries|usage.logs`. Rows, usage
 * and transcripts are read from Warden's sessions and runs — one source of truth; `reset` and
 * `compact` move the transcript's start instead of deleting history from the hash-chained log.
 */
import { randomUUID } from 'node:crypto';

import { checkParams, WardenError } from '../../../core/index.ts';
import {
  agentIdOfKey,
  applyPatch,
  canonicalSessionKey,
  checkLifecycleGuards,
  listSessions,
  parseSessionKey,
  resolvedView,
  resolveSession,
  rotateSessionId,
  type SessionDefaults,
  sessionKind,
  type SessionMessageView,
  sessionsCompactParams,
  sessionsDeleteParams,
  sessionsListParams,
  sessionsPatchParams,
  sessionsPreview,
  sessionsPreviewParams,
  sessionsResetParams,
  sessionsResolveParams,
  sessionsUsage,
  sessionsUsageLogsParams,
  sessionsUsageParams,
  sessionsUsageTimeseriesParams,
  type SessionView,
  usageCost,
  usageCostParams,
  type UsageLogEntry,
  usageLogs,
  type UsageRecord,
  usageTimeseries,
} from '../../../core/openclaw/index.ts';
import type { Kernel } from '../../../kernel/index.ts';
import type { ProcessRecord } from '../../../store/index.ts';
import type { MethodCall, MethodHandler } from '../connection.ts';
import { invalidRequest } from '../frames.ts';
import {
  ensureSession,
  findSession,
  type GatewaySession,
  listGatewaySessions,
  mustFindSession,
  updateEntry,
} from '../session-records.ts';
import {
  modelOf,
  runStatus,
  sessionRuns,
  type TranscriptMessage,
  transcriptOf,
} from '../transcript.ts';
import type { Turns } from '../turns.ts';

export interface SessionMethodsOptions {
  readonly turns: Turns;
  /** The daemon's default model (`scripted`, `openai:<model>`). */
  readonly model: () => string;
}

const PATH = 'warden:sessions';

function providerOf(model: string): string {
  return model.includes(':') ? model.slice(0, model.indexOf(':')) : model;
}

function defaultsOf(model: string): SessionDefaults {
  const at = model.indexOf(':');
  return {
    modelProvider: providerOf(model),
    model: at >= 0 ? model.slice(at + 1) : model,
    contextTokens: null,
  };
}

function keyOf(method: string, raw: string, agentId?: string): string {
  try {
    return canonicalSessionKey(raw, agentId === undefined ? {} : { agentId });
  } catch (error) {
    throw invalidRequest(`invalid ${method} params: ${(error as Error).message}`);
  }
}

interface Gathered {
  readonly session: GatewaySession;
  readonly runs: ProcessRecord[];
  readonly allRuns: ProcessRecord[];
}

async function gather(kernel: Kernel, sessions?: GatewaySession[]): Promise<Gathered[]> {
  const list = sessions ?? (await listGatewaySessions(kernel));
  return Promise.all(
    list.map(async (session) => {
      const allRuns = await sessionRuns(kernel, session, true);
      const from = (session.session.settings.openclaw_history_from as number | undefined) ?? 0;
      return { session, allRuns, runs: allRuns.filter((r) => r.created_at >= from) };
    }),
  );
}

/**
 * Every session's view, rebuilt only for sessions whose row or runs changed since the last call:
 * `sessions.list` is what a Control UI asks after every `sessions.changed`, and building a view
 * reads and parses all of the session's runs. The key is the session row's version and the
 * store's stamp of its runs (count, versions, update times), read in one grouped query, so a
 * change made by any node shows. Views of sessions no longer listed are dropped.
 */
class SessionViewCache {
  #views = new Map<string, { readonly stamp: string; readonly view: SessionView }>();

  async all(kernel: Kernel): Promise<SessionView[]> {
    const [sessions, stamps] = await Promise.all([
      listGatewaySessions(kernel),
      kernel.store.sessionRunStamps(),
    ]);
    const runStamps = new Map(stamps.map((s) => [s.session_id, s]));
    const stampOf = (g: GatewaySession) => {
      const runs = runStamps.get(g.session.id);
      return [
        g.session.version ?? 0,
        g.session.updated_at,
        runs?.runs ?? 0,
        runs?.version_sum ?? 0,
        runs?.updated_at_sum ?? 0,
      ].join(':');
    };
    const stale = sessions.filter((g) => this.#views.get(g.session.id)?.stamp !== stampOf(g));
    // Stamped before the runs are read: a change in between only means a rebuild next time.
    const rebuilt = new Map(
      (await gather(kernel, stale)).map((g) => [
        g.session.session.id,
        { stamp: stampOf(g.session), view: viewOf(g) },
      ]),
    );
    const kept = this.#views;
    this.#views = new Map(
      sessions.map((g) => [g.session.id, rebuilt.get(g.session.id) ?? kept.get(g.session.id)!]),
    );
    return sessions.map((g) => this.#views.get(g.session.id)!.view);
  }
}

function statusOf(run: ProcessRecord | undefined): SessionView['status'] {
  if (!run) return undefined;
  const s = runStatus(run);
  if (s === 'running') return run.state === 'new' || run.state === 'ready' ? 'queued' : 'running';
  if (s === 'failed' && run.terminal_reason === 'timeout_exceeded') return 'timeout';
  return s;
}

type DeliveryHints = Pick<
  SessionView['entry'],
  'lastAccountId' | 'deliveryContext' | 'chatType' | 'channel'
>;

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

/**
 * The delivery-context hints of a session (seed: `sessions.list` delivery-context parity): where
 * its newest channel turn came from, read from that run's metadata (turns.ts stores the inbound
 * message as the reply route), so they follow the event log like the transcript. Sessions that
 * never had a channel turn keep what their entry says.
 */
function deliveryOf(runs: readonly ProcessRecord[]): DeliveryHints {
  for (let i = runs.length - 1; i >= 0; i--) {
    const meta = runs[i]!.envelope.metadata.openclaw as
      { kind?: unknown; replyTo?: { inbound?: Record<string, unknown> } } | undefined;
    const inbound = meta?.replyTo?.inbound;
    if (meta?.kind !== 'channel' || !inbound || !nonEmpty(inbound.channel)) continue;
    const { channel, accountId, threadId, chatType } = inbound;
    const to = chatType === 'group' && nonEmpty(inbound.groupId) ? inbound.groupId : inbound.from;
    return {
      channel,
      ...(nonEmpty(chatType) ? { chatType } : {}),
      ...(nonEmpty(accountId) ? { lastAccountId: accountId } : {}),
      deliveryContext: {
        channel,
        ...(nonEmpty(to) ? { to } : {}),
        ...(nonEmpty(accountId) ? { accountId } : {}),
        ...(nonEmpty(threadId) ? { threadId } : {}),
      },
    };
  }
  return {};
}

/** The stored entry with the delivery hints of the newest channel turn over it. */
function entryOf(g: Gathered): SessionView['entry'] {
  const { entry } = g.session;
  const hints = deliveryOf(g.allRuns);
  return {
    ...entry,
    ...hints,
    ...(entry.channel ? { channel: entry.channel } : {}),
    ...(entry.chatType ? { chatType: entry.chatType } : {}),
  };
}

function viewOf(g: Gathered): SessionView {
  const messages = transcriptOf(g.runs);
  const last = messages.at(-1);
  const firstUser = messages.find((m) => m.role === 'user');
  const input = g.allRuns.reduce((n, r) => n + r.usage.input_tokens, 0);
  const output = g.allRuns.reduce((n, r) => n + r.usage.output_tokens, 0);
  const running = g.runs.some((r) => runStatus(r) === 'running');
  const lastUser = [...messages].reverse().find((m) => m.role === 'user');
  return {
    key: g.session.key,
    kind: sessionKind(parseSessionKey(g.session.key)),
    updatedAt: g.session.session.updated_at,
    createdAt: g.session.session.created_at,
    entry: entryOf(g),
    usage: {
      inputTokens: input,
      outputTokens: output,
      totalTokens: input + output,
      contextTokens: null,
      totalTokensFresh: !running,
      estimatedCostUsd: 0,
    },
    ...(last ? { lastMessage: { role: last.role, text: last.text, ts: last.ts } } : {}),
    ...(firstUser ? { firstUserMessage: firstUser.text } : {}),
    ...(statusOf(g.runs.at(-1)) ? { status: statusOf(g.runs.at(-1))! } : {}),
    ...(lastUser ? { lastInteractionAt: lastUser.ts } : {}),
  };
}

/** Transcript lines as usage logs (an assistant line carries its run's tokens). */
function logsOf(messages: readonly TranscriptMessage[]): UsageLogEntry[] {
  return messages.map((m) => ({
    timestamp: m.ts,
    role: m.role,
    content: m.text,
    ...(m.role === 'assistant'
      ? {
          tokens: (m.inputTokens ?? 0) + (m.outputTokens ?? 0),
          ...(m.status === 'failed' || m.status === 'killed' ? { isError: true } : {}),
        }
      : {}),
  }));
}

function messagesOf(g: Gathered): SessionMessageView[] {
  return transcriptOf(g.runs).map((m) => ({ role: m.role, text: m.text, ts: m.ts }));
}

/** One usage record per finished model-using run (Warden keeps no price table: no cost). */
function usageRecords(gathered: readonly Gathered[]): UsageRecord[] {
  const out: UsageRecord[] = [];
  for (const g of gathered)
    for (const run of g.allRuns) {
      if (run.usage.input_tokens === 0 && run.usage.output_tokens === 0) continue;
      const model = modelOf(run);
      out.push({
        ts: run.completed_at ?? run.updated_at,
        sessionKey: g.session.key,
        sessionId: g.session.entry.sessionId,
        agentId: agentIdOfKey(g.session.key) ?? 'main',
        ...(g.session.entry.channel ? { channel: g.session.entry.channel } : {}),
        model,
        provider: providerOf(model),
        input: run.usage.input_tokens,
        output: run.usage.output_tokens,
        cacheRead: 0,
        cacheWrite: 0,
      });
    }
  return out;
}

/** §4.13: the answer for a key without a transcript (no session, or no turn yet). */
function noTranscript(key: string) {
  return invalidRequest(`No transcript found for session: ${key}`);
}

function labelOwner(views: readonly GatewaySession[], self: string) {
  return (label: string): string | null =>
    views.find((v) => v.key !== self && v.entry.label === label)?.key ?? null;
}

export function sessionMethods(options: SessionMethodsOptions): Record<string, MethodHandler> {
  const { turns } = options;
  const cache = new SessionViewCache();
  const parse = <T>(call: MethodCall, schema: Parameters<typeof checkParams<T>>[1]): T =>
    checkParams(`invalid ${call.method} params`, schema, call.params);

  return {
    'sessions.list': async (call) => {
      const p = parse(call, sessionsListParams);
      return listSessions(await cache.all(call.services.kernel), p, Date.now(), {
        path: PATH,
        defaults: defaultsOf(options.model()),
        configuredAgentIds: ['main'],
      });
    },

    'sessions.preview': async (call) => {
      const p = parse(call, sessionsPreviewParams);
      const kernel = call.services.kernel;
      const byKey = new Map<string, SessionMessageView[]>();
      for (const raw of p.keys) {
        const key = keyOf('sessions.preview', raw);
        const session = await findSession(kernel, key);
        if (session) byKey.set(raw, messagesOf((await gather(kernel, [session]))[0]!));
      }
      return sessionsPreview(p, (key) => byKey.get(key), Date.now());
    },

    'sessions.resolve': async (call) => {
      const p = parse(call, sessionsResolveParams);
      const q =
        p.key === undefined
          ? p
          : { ...p, key: keyOf('sessions.resolve', p.key, p.agentId ?? undefined) };
      return resolveSession(await cache.all(call.services.kernel), q, { defaultAgentId: 'main' });
    },

    'sessions.describe': async (call) => {
      const raw = call.params.key ?? call.params.sessionKey;
      if (typeof raw !== 'string')
        throw invalidRequest('invalid sessions.describe params: key required');
      const key = keyOf('sessions.describe', raw);
      const session = await mustFindSession(call.services.kernel, key);
      const [view] = (await gather(call.services.kernel, [session])).map(viewOf);
      const listed = listSessions(
        [view!],
        sessionsListParams.parse({
          includeGlobal: true,
          includeUnknown: true,
          archived: 'all',
        }),
        Date.now(),
        { path: PATH, defaults: defaultsOf(options.model()) },
      );
      return { ok: true, key, session: listed.sessions[0] };
    },

    'sessions.get': async (call) => {
      const raw = call.params.key ?? call.params.sessionKey;
      if (typeof raw !== 'string')
        throw invalidRequest('invalid sessions.get params: key required');
      const key = keyOf('sessions.get', raw);
      const session = await mustFindSession(call.services.kernel, key);
      return {
        ok: true,
        key,
        path: PATH,
        entry: { ...session.entry, updatedAt: session.session.updated_at },
        resolved: resolvedView(session.entry, defaultsOf(options.model())),
      };
    },

    'sessions.patch': async (call) => {
      const p = parse(call, sessionsPatchParams);
      const kernel = call.services.kernel;
      const key = keyOf('sessions.patch', p.key, p.agentId ?? undefined);
      await ensureSession(kernel, key);
      const all = await listGatewaySessions(kernel);
      const updated = await updateEntry(kernel, key, (entry) =>
        applyPatch(entry, p, { key, labelTakenBy: labelOwner(all, key) }),
      );
      return {
        ok: true,
        path: PATH,
        key,
        entry: updated.entry,
        resolved: resolvedView(updated.entry, defaultsOf(options.model())),
      };
    },

    'sessions.reset': async (call) => {
      const p = parse(call, sessionsResetParams);
      const kernel = call.services.kernel;
      const key = keyOf('sessions.reset', p.key, p.agentId ?? undefined);
      const current = await mustFindSession(kernel, key);
      checkLifecycleGuards(current.entry, p, key, 'reset');
      await turns.abort(key); // a reset starts over: nothing of the old conversation runs on
      const updated = await updateEntry(
        kernel,
        key,
        (entry) => rotateSessionId(entry, randomUUID()),
        { openclaw_history_from: Date.now() },
      );
      return {
        ok: true,
        key,
        reason: p.reason,
        entry: updated.entry,
        resolved: resolvedView(updated.entry, defaultsOf(options.model())),
      };
    },

    'sessions.delete': async (call) => {
      const p = parse(call, sessionsDeleteParams);
      const kernel = call.services.kernel;
      const key = keyOf('sessions.delete', p.key, p.agentId ?? undefined);
      const session = await findSession(kernel, key);
      if (!session) return { ok: true, key, deleted: false, archived: [] };
      checkLifecycleGuards(session.entry, p, key, 'deletion');
      if (p.archivedOnly === true && session.entry.archived !== true)
        return { ok: true, key, deleted: false, archived: [], reason: 'not archived' };
      await turns.abort(key);
      try {
        await kernel.sessions.delete(session.session.id);
      } catch (error) {
        if (error instanceof WardenError && error.code === 'INVALID_STATE')
          throw invalidRequest(
            `session ${key} still has live work (a run is stopping or a task is queued); retry in a moment`,
          );
        throw error;
      }
      await turns.forget(key);
      return { ok: true, key, deleted: true, archived: [] };
    },

    'sessions.compact': async (call) => {
      const p = parse(call, sessionsCompactParams);
      const kernel = call.services.kernel;
      const key = keyOf('sessions.compact', p.key, p.agentId ?? undefined);
      const session = await findSession(kernel, key);
      if (!session) return { ok: false, key, compacted: false, reason: 'no sessionId' };
      const [g] = await gather(kernel, [session]);
      const messages = transcriptOf(g!.runs);
      if (messages.length === 0)
        return { ok: false, key, compacted: false, reason: 'no transcript' };
      if (messages.length <= p.maxLines)
        return { ok: true, key, compacted: false, kept: messages.length, reason: 'below maxLines' };
      // Keep whole turns: the cut falls on the run holding the first kept line.
      const first = messages[messages.length - p.maxLines]!;
      const cutRun = g!.runs.find((r) => transcriptOf([r])[0]?.runId === first.runId);
      const cut = cutRun?.created_at ?? first.ts;
      await updateEntry(kernel, key, (entry) => entry, { openclaw_history_from: cut });
      const kept = transcriptOf(g!.runs.filter((r) => r.created_at >= cut)).length;
      return { ok: true, key, compacted: true, kept, archived: messages.length - kept };
    },

    'usage.status': () =>
      Promise.resolve({
        updatedAt: Date.now(),
        providers: [
          {
            provider: providerOf(options.model()),
            displayName: options.model(),
            // Warden meters runs with budgets, not provider quota windows.
            windows: [],
          },
        ],
      }),

    'usage.cost': async (call) => {
      const p = parse(call, usageCostParams);
      return usageCost(usageRecords(await gather(call.services.kernel)), p, Date.now());
    },

    'sessions.usage': async (call) => {
      const p = parse(call, sessionsUsageParams);
      const gathered = await gather(call.services.kernel);
      const q =
        p.key === undefined
          ? p
          : { ...p, key: keyOf('sessions.usage', p.key, p.agentId ?? undefined) };
      return sessionsUsage(
        usageRecords(gathered),
        gathered.map((g) => {
          const entry = entryOf(g);
          return {
            key: g.session.key,
            sessionId: entry.sessionId,
            updatedAt: g.session.session.updated_at,
            agentId: agentIdOfKey(g.session.key) ?? 'main',
            ...(entry.label ? { label: entry.label } : {}),
            ...(entry.channel ? { channel: entry.channel } : {}),
            ...(entry.chatType ? { chatType: entry.chatType } : {}),
            ...(g.allRuns.length ? { model: modelOf(g.allRuns.at(-1)!) } : {}),
            // Message counts and the daily/messages aggregates come from the transcript.
            logs: logsOf(transcriptOf(g.allRuns)),
          };
        }),
        q,
        Date.now(),
      );
    },

    'sessions.usage.timeseries': async (call) => {
      const p = parse(call, sessionsUsageTimeseriesParams);
      const key = keyOf('sessions.usage.timeseries', p.key, p.agentId ?? undefined);
      const session = await findSession(call.services.kernel, key);
      const gathered = session ? await gather(call.services.kernel, [session]) : [];
      // A session made by sessions.patch has no transcript yet: the same answer as OpenClaw's.
      if (!gathered[0]?.allRuns.length) throw noTranscript(key);
      return usageTimeseries(usageRecords(gathered), key);
    },

    'sessions.usage.logs': async (call) => {
      const p = parse(call, sessionsUsageLogsParams);
      const key = keyOf('sessions.usage.logs', p.key, p.agentId ?? undefined);
      const session = await findSession(call.services.kernel, key);
      const [g] = session ? await gather(call.services.kernel, [session]) : [];
      if (!g?.allRuns.length) throw noTranscript(key);
      return usageLogs(logsOf(transcriptOf(g.allRuns)), p.limit);
    },
  };
}
