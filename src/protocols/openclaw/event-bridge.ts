/**
 * Warden's event log → OpenClaw events (reference §5). Every commit this process makes is
 * read in order (one chain, so events keep their log order across the async look-ups):
 *   - `model.delta` of a gateway run → `chat` (`state: delta`, per-run `seq` from 1) and
 *     `agent` (`stream: assistant`);
 *   - a gateway run's `process.created` / `process.terminated` → `agent` lifecycle start/end
 *     and the `chat` `final` / `aborted` / `error`, then the session's next queued turn;
 *   - `confirmation` interrupts (tool calls waiting for a person) → `exec.approval.requested`
 *     and, when answered from anywhere (OpenClaw, `warden approve`, ACP), `exec.approval.resolved`;
 *   - session changes → `sessions.changed` to the connections that subscribed.
 * Runs started elsewhere (ACP, the CLI) appear under their pid as `runId`.
 */
import type { Kernel } from '../../kernel/index.ts';
import type { EventRecord, ProcessRecord } from '../../store/index.ts';
import type { OpenClawServer } from './server.ts';
import { gatewaySession } from './session-records.ts';
import { DROPPED_BY_ABORT } from './turns.ts';

/** OpenClaw's reason for an approval nobody could give. */
const NO_APPROVER_CLIENTS = 'auto-expire:no-approver-clients';

export interface RunMeta {
  readonly runId: string;
  readonly sessionKey: string;
  readonly kind: string;
  /** Started through the gateway (chat turns): these carry chat events. */
  readonly gateway: boolean;
}

export interface EventBridgeOptions {
  readonly kernel: () => Kernel;
  readonly server: () => OpenClawServer | null;
  /** A gateway run ended (the session's next turn may start). */
  readonly onRunEnded: (meta: RunMeta, run: ProcessRecord) => void;
  /** Connections that called `sessions.subscribe`. */
  readonly sessionSubscribers: () => ReadonlySet<string>;
  /**
   * Deny a gateway run's exec approval at once while no client with `operator.approvals` is
   * connected (`exec_approvals.no_approver_clients: deny`); otherwise it waits.
   */
  readonly denyWithoutApprovers?: () => boolean;
  readonly onError: (error: unknown) => void;
}

/** The reply text of a finished run: the last stage output's `text`, else its JSON. */
export function replyText(run: ProcessRecord): string {
  const outputs = run.envelope.outputs;
  const names = Object.keys(outputs);
  const last = names.length ? outputs[names[names.length - 1]!] : undefined;
  if (last === undefined || last === null) return '';
  if (typeof last === 'string') return last;
  if (typeof last === 'object' && typeof (last as { text?: unknown }).text === 'string')
    return (last as { text: string }).text;
  return JSON.stringify(last);
}

export function runMeta(run: ProcessRecord): RunMeta {
  const meta = run.envelope.metadata.openclaw as
    { runId?: unknown; sessionKey?: unknown; kind?: unknown } | undefined;
  if (meta && typeof meta.runId === 'string' && typeof meta.sessionKey === 'string')
    return {
      runId: meta.runId,
      sessionKey: meta.sessionKey,
      kind: typeof meta.kind === 'string' ? meta.kind : 'chat',
      gateway: true,
    };
  return { runId: run.pid, sessionKey: '', kind: 'run', gateway: false };
}

export class EventBridge {
  readonly #options: EventBridgeOptions;
  #chain: Promise<void> = Promise.resolve();
  readonly #meta = new Map<string, RunMeta>();
  /**
   * Per-run `chat`/`agent` payload seq (§5.2), from 1: the last one sent, by `stream:runId`. A
   * cache of a count over the event log (see {@link #seqFromLog}), so a run that goes on after
   * a restart, or while nobody was connected, goes on counting where the log says.
   */
  readonly #runSeq = new Map<string, number>();
  #off: (() => void) | null = null;

  constructor(options: EventBridgeOptions) {
    this.#options = options;
  }

  start(): void {
    this.#off = this.#options.kernel().store.onCommit((events) => {
      this.#chain = this.#chain
        .then(() => this.#handle(events))
        .catch((error: unknown) => this.#options.onError(error));
    });
  }

  stop(): void {
    this.#off?.();
  }

  /**
   * A queued turn that will never run: its sender waits for the `chat` end of its runId, so
   * it ends `aborted` (§4.16) — `stopReason` `aborted` when a person aborted it, else `dropped`.
   */
  dropped(ref: { runId: string; sessionKey: string; dropped?: string }): void {
    const server = this.#options.server();
    if (!server || server.connectionCount === 0) return;
    const stopReason = ref.dropped === DROPPED_BY_ABORT ? 'aborted' : 'dropped';
    const base = { runId: ref.runId, sessionKey: ref.sessionKey };
    server.broadcast(
      'chat',
      { ...base, seq: 1, state: 'aborted', stopReason },
      {
        scope: 'operator.read',
      },
    );
    server.broadcast(
      'agent',
      {
        ...base,
        seq: 1,
        stream: 'lifecycle',
        ts: Date.now(),
        data: { phase: 'error', reason: stopReason, error: ref.dropped ?? stopReason },
      },
      { scope: 'operator.read' },
    );
  }

  /** Registers a run started by the gateway before its first event arrives. */
  remember(pid: string, meta: RunMeta): void {
    this.#meta.set(pid, meta);
    if (this.#meta.size > 10_000) this.#meta.delete(this.#meta.keys().next().value!);
  }

  async #metaOf(pid: string): Promise<RunMeta | null> {
    const known = this.#meta.get(pid);
    if (known) return known;
    const run = await this.#options.kernel().store.getProcess(pid);
    if (!run) return null;
    const meta = runMeta(run);
    this.remember(pid, meta);
    return meta;
  }

  /**
   * The next `seq` of a run's `chat` or `agent` payloads (separate counters, each from 1) for
   * `event`, which makes one payload of each stream it is counted for.
   */
  async #nextSeq(
    event: EventRecord,
    meta: RunMeta,
    stream: 'chat' | 'agent' = 'agent',
  ): Promise<number> {
    const key = `${stream}:${meta.runId}`;
    let last = this.#runSeq.get(key);
    if (last === undefined) {
      const counted = await this.#seqFromLog(event, meta);
      this.#runSeq.set(`chat:${meta.runId}`, counted.chat);
      this.#runSeq.set(`agent:${meta.runId}`, counted.agent);
      last = counted[stream];
    }
    this.#runSeq.set(key, last + 1);
    return last + 1;
  }

  /**
   * How many `chat` and `agent` payloads the run's events before `event` make (the rules of
   * {@link #one}): `model.delta` one of each (`chat` only for gateway runs), a gateway run's
   * `process.created` one `agent`, its `process.terminated` one of each. A new run's first
   * event reads nothing.
   */
  async #seqFromLog(event: EventRecord, meta: RunMeta): Promise<{ chat: number; agent: number }> {
    const counted = { chat: 0, agent: 0 };
    if (event.type === 'process.created' || !event.process_id) return counted;
    const store = this.#options.kernel().store;
    let afterSeq: number | undefined;
    for (;;) {
      const page = await store.readEvents({
        sessionId: event.session_id,
        processId: event.process_id,
        ...(afterSeq === undefined ? {} : { afterSeq }),
        limit: 10_000,
      });
      for (const e of page) {
        if (e.seq >= event.seq) return counted;
        if (e.type === 'model.delta') {
          counted.agent++;
          if (meta.gateway) counted.chat++;
        } else if (meta.gateway && e.type === 'process.created') counted.agent++;
        else if (meta.gateway && e.type === 'process.terminated') {
          counted.agent++;
          counted.chat++;
        }
      }
      if (page.length < 10_000) return counted;
      afterSeq = page[page.length - 1]!.seq;
    }
  }

  async #handle(events: readonly EventRecord[]): Promise<void> {
    const server = this.#options.server();
    if (!server || server.connectionCount === 0) {
      // Nobody listens, so no seq is sent: forget the counts (the log has them).
      this.#runSeq.clear();
      // Nobody listens, but queued turns must still start when a run ends, and an approval
      // nobody can give may be denied.
      for (const event of events) {
        if (event.type === 'process.terminated' && event.process_id) await this.#ended(event);
        if (event.type === 'interrupt.raised') await this.#denyWithoutApprovers(server, event);
      }
      return;
    }
    for (const event of events) await this.#one(server, event);
  }

  async #ended(event: EventRecord): Promise<RunMeta | null> {
    const meta = await this.#metaOf(event.process_id!);
    if (!meta?.gateway) return meta;
    const run = await this.#options.kernel().store.getProcess(event.process_id!);
    if (run) this.#options.onRunEnded(meta, run);
    return meta;
  }

  async #one(server: OpenClawServer, event: EventRecord): Promise<void> {
    const data = (event.data ?? {}) as Record<string, unknown>;
    switch (event.type) {
      case 'model.delta': {
        const meta = event.process_id ? await this.#metaOf(event.process_id) : null;
        if (!meta) return;
        const text = typeof data.text === 'string' ? data.text : '';
        if (meta.gateway)
          server.broadcast(
            'chat',
            {
              runId: meta.runId,
              sessionKey: meta.sessionKey,
              seq: await this.#nextSeq(event, meta, 'chat'),
              state: 'delta',
              deltaText: text,
            },
            { scope: 'operator.read' },
          );
        server.broadcast(
          'agent',
          {
            runId: meta.runId,
            seq: await this.#nextSeq(event, meta),
            stream: 'assistant',
            ts: event.ts,
            data: { delta: text },
            ...(meta.gateway ? { sessionKey: meta.sessionKey } : {}),
          },
          { scope: 'operator.read' },
        );
        return;
      }
      case 'process.created': {
        const meta = event.process_id ? await this.#metaOf(event.process_id) : null;
        if (!meta?.gateway) return;
        server.broadcast(
          'agent',
          {
            runId: meta.runId,
            seq: await this.#nextSeq(event, meta),
            stream: 'lifecycle',
            ts: event.ts,
            sessionKey: meta.sessionKey,
            data: { phase: 'start', startedAt: event.ts },
          },
          { scope: 'operator.read' },
        );
        return;
      }
      case 'process.terminated': {
        if (!event.process_id) return;
        const meta = await this.#metaOf(event.process_id);
        if (!meta?.gateway) return;
        const run = await this.#options.kernel().store.getProcess(event.process_id);
        if (!run) return;
        const reason =
          typeof data.reason === 'string' ? data.reason : (run.terminal_reason ?? 'completed');
        const text = replyText(run);
        const message = {
          role: 'assistant',
          content: [{ type: 'text', text }],
          timestamp: event.ts,
        };
        const usage = { input: run.usage.input_tokens, output: run.usage.output_tokens };
        const base = {
          runId: meta.runId,
          sessionKey: meta.sessionKey,
          seq: await this.#nextSeq(event, meta, 'chat'),
        };
        const chat =
          reason === 'completed'
            ? { ...base, state: 'final', message, usage, stopReason: 'end' }
            : reason === 'user_cancelled'
              ? { ...base, state: 'aborted', stopReason: 'aborted' }
              : {
                  ...base,
                  state: 'error',
                  errorMessage: run.terminal_message ?? reason,
                  errorKind: reason === 'timeout_exceeded' ? 'timeout' : 'unknown',
                  usage,
                  stopReason: reason,
                };
        server.broadcast('chat', chat, { scope: 'operator.read' });
        server.broadcast(
          'agent',
          {
            runId: meta.runId,
            seq: await this.#nextSeq(event, meta),
            stream: 'lifecycle',
            ts: event.ts,
            sessionKey: meta.sessionKey,
            data: { phase: reason === 'completed' ? 'end' : 'error', reason, endedAt: event.ts },
          },
          { scope: 'operator.read' },
        );
        this.#runSeq.delete(`chat:${meta.runId}`);
        this.#runSeq.delete(`agent:${meta.runId}`);
        this.#options.onRunEnded(meta, run);
        this.#sessionsChanged(server, event, 'send');
        return;
      }
      case 'interrupt.raised': {
        if (data.kind !== 'confirmation') return;
        const meta = event.process_id ? await this.#metaOf(event.process_id) : null;
        server.broadcast(
          'exec.approval.requested',
          {
            id: data.id,
            request: {
              command: commandOf(data.call),
              host: 'gateway',
              tool: data.tool,
              ...(typeof data.prompt === 'string' ? { prompt: data.prompt } : {}),
              ...(meta?.gateway ? { sessionKey: meta.sessionKey } : {}),
              runId: meta?.runId ?? event.process_id,
              unavailableDecisions: ['allow-always'],
            },
            createdAtMs: event.ts,
            expiresAtMs: typeof data.expires_at === 'number' ? data.expires_at : null,
          },
          { scope: 'operator.approvals', dropIfSlow: true },
        );
        await this.#denyWithoutApprovers(server, event);
        return;
      }
      case 'interrupt.resolved':
      case 'interrupt.expired':
      case 'interrupt.cancelled': {
        const interrupt =
          typeof data.id === 'string'
            ? await this.#options.kernel().store.getInterrupt(data.id)
            : undefined;
        if (interrupt?.kind !== 'confirmation') return;
        const response = interrupt.response ?? {};
        const decision =
          event.type !== 'interrupt.resolved'
            ? 'deny'
            : typeof response.decision === 'string' && response.decision.startsWith('allow')
              ? response.decision
              : response.approved === false
                ? 'deny'
                : 'allow-once';
        server.broadcast(
          'exec.approval.resolved',
          {
            id: interrupt.id,
            decision,
            ...(interrupt.resolver ? { resolvedBy: interrupt.resolver } : {}),
            ts: event.ts,
            ...(event.type === 'interrupt.resolved' ? {} : { reason: event.type.slice(10) }),
          },
          { scope: 'operator.approvals', dropIfSlow: true },
        );
        return;
      }
      case 'session.created':
      case 'session.updated':
        this.#sessionsChanged(server, event, event.type === 'session.created' ? 'create' : 'patch');
        return;
      case 'session.deleted':
        this.#sessionsChanged(server, event, 'delete');
        return;
    }
  }

  /**
   * OpenClaw's `auto-expire:no-approver-clients`, when configured: a gateway run's exec approval
   * raised while no connected client holds `operator.approvals` is denied at once (Warden's own
   * approvers — `warden approve`, ACP — do not count). Already settled: nothing to do.
   */
  async #denyWithoutApprovers(server: OpenClawServer | null, event: EventRecord): Promise<void> {
    const data = (event.data ?? {}) as Record<string, unknown>;
    if (data.kind !== 'confirmation' || typeof data.id !== 'string' || !event.process_id) return;
    if (!this.#options.denyWithoutApprovers?.()) return;
    if (server && server.connectionsWith('operator.approvals') > 0) return;
    const meta = await this.#metaOf(event.process_id);
    if (!meta?.gateway) return;
    await this.#options
      .kernel()
      .resolveInterrupt(
        data.id,
        { approved: false, decision: 'deny', text: NO_APPROVER_CLIENTS },
        `openclaw:${NO_APPROVER_CLIENTS}`,
      )
      .catch(() => undefined); // answered or expired in between: that answer stands
  }

  /** `sessions.changed` is targeted (no `seq`) and dropped for a slow socket (§5.1). */
  #sessionsChanged(server: OpenClawServer, event: EventRecord, reason: string): void {
    const subscribers = this.#options.sessionSubscribers();
    if (subscribers.size === 0) return;
    const data = (event.data ?? {}) as Record<string, unknown>;
    const key = typeof data.key === 'string' ? data.key : undefined;
    void this.#changedPayload(event, reason, key)
      .then((payload) => {
        for (const connection of server.connections)
          if (subscribers.has(connection.connId))
            connection.targeted('sessions.changed', payload, { dropIfSlow: true });
      })
      .catch((error: unknown) => this.#options.onError(error));
  }

  async #changedPayload(
    event: EventRecord,
    reason: string,
    wardenKey: string | undefined,
  ): Promise<Record<string, unknown>> {
    const store = this.#options.kernel().store;
    const session = wardenKey
      ? await store.getSessionByKey(wardenKey)
      : await store.getSession(event.session_id);
    const view = session ? gatewaySession(session) : null;
    return {
      reason,
      ts: event.ts,
      ...(view ? { sessionKey: view.key, sessionId: view.entry.sessionId } : {}),
      ...(wardenKey && !view ? { sessionKey: wardenKey } : {}),
    };
  }
}

function commandOf(call: unknown): string | undefined {
  if (call === null || typeof call !== 'object') return undefined;
  const args =
    (call as { arguments?: unknown; args?: unknown }).arguments ??
    (call as { args?: unknown }).args;
  if (
    args &&
    typeof args === 'object' &&
    typeof (args as { command?: unknown }).command === 'string'
  )
    return (args as { command: string }).command;
  return undefined;
}
