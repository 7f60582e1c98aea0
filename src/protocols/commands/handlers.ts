/**
 * The commands and queries every protocol shares, by wire name: each takes validated params (see
 * schemas.ts) and the services, and answers a plain JSON-able result. ACP calls them through
 * {@link dispatch}; gRPC and the OpenClaw gateway will translate onto the same functions, so one
 * command behaves identically whichever face it comes through.
 */
import { errors, parseWorkflowText, WardenError } from '../../core/index.ts';
import { verifyLedger } from '../../kernel/index.ts';
import { remoteWorkerId } from '../../queue/index.ts';
import type { Security } from '../../security/index.ts';
import {
  type ProcessRecord,
  type SessionRecord,
  type Store,
  waitForChange,
} from '../../store/index.ts';
import { formatAttemptToken, parseAttemptToken } from './attempt-token.ts';
import type { Caller, CommandServices } from './context.ts';
import type { CommandName, CommandParams } from './schemas.ts';
import { attemptView, taskView } from './views.ts';

type Handler<M extends CommandName> = (
  params: CommandParams<M>,
  services: CommandServices,
  caller: Caller,
  signal: AbortSignal,
) => Promise<unknown>;

/** Commands that are protocol-specific (the handshake, subscriptions) are not here. */
export type SharedCommand = Exclude<
  CommandName,
  'system.hello' | 'events.subscribe' | 'events.unsubscribe'
>;

const DEFAULT_WAIT_MS = 30_000;

export const handlers: { readonly [M in SharedCommand]: Handler<M> } = {
  'system.ping': () => Promise.resolve({ now: Date.now() }),
  'system.status': async (_p, { kernel }) => kernel.status(),

  'session.create': async (p, { kernel }) => {
    const existing = await kernel.store.getSessionByKey(p.key);
    if (existing) return { session: existing, created: false };
    return { session: await kernel.sessions.ensure(p.key, p.settings ?? {}), created: true };
  },
  'session.get': async (p, { kernel }) => ({
    session: await mustGetSession(kernel.store, p),
  }),
  'session.list': async (p, { kernel }) => ({
    sessions: (await kernel.store.listSessions()).slice(0, p.limit ?? 100),
  }),
  'session.patch': async (p, { kernel }) => ({
    session: await kernel.sessions.patch(p.session_id, p.settings, p.expect_version),
  }),
  'session.delete': async (p, { kernel }) => ({
    deleted: await kernel.sessions.delete(p.session_id),
  }),
  'session.history': async (p, { kernel }) => {
    await mustGetSession(kernel.store, { session_id: p.session_id });
    const limit = p.limit ?? 1_000;
    const events = await kernel.store.readEvents({
      sessionId: p.session_id,
      ...(p.from_seq === undefined ? {} : { afterSeq: p.from_seq }),
      limit,
    });
    return {
      events,
      last_seq: events.at(-1)?.seq ?? p.from_seq ?? 0,
      more: events.length === limit,
    };
  },

  'run.start': async (p, { kernel }, caller) => {
    const workflow =
      typeof p.workflow === 'string' ? parseWorkflowText(p.workflow, '<run.start>') : p.workflow;
    const run = await kernel.startRun({
      workflow: workflow as Parameters<typeof kernel.startRun>[0]['workflow'],
      ...(p.input === undefined ? {} : { input: p.input }),
      ...(p.session_key ? { sessionKey: p.session_key } : {}),
      ...(p.priority ? { priority: p.priority } : {}),
      ...(p.metadata ? { metadata: p.metadata } : {}),
      userId: p.user_id ?? caller.name,
      source: 'acp',
    });
    return { run };
  },
  'run.get': async (p, { kernel }) => ({ run: await kernel.getProcess(p.pid) }),
  'run.list': async (p, { kernel }) => ({
    runs: await kernel.store.listProcesses({
      ...(p.states ? { states: p.states } : {}),
      ...(p.session_id ? { sessionId: p.session_id } : {}),
      limit: p.limit ?? 100,
    }),
  }),
  'run.cancel': async (p, { kernel }) => ({ run: await kernel.cancelRun(p.pid, p.message) }),
  'run.wait': async (p, { kernel }, _caller, signal) => {
    const reached = (run: ProcessRecord) =>
      run.state === 'terminated' ||
      run.state === 'zombie' ||
      (p.until === 'waiting' && run.state === 'waiting');
    const done = await waitForChange(
      kernel.store,
      async () => {
        const run = await kernel.getProcess(p.pid);
        return reached(run) ? { run, reached: true } : undefined;
      },
      { deadline: Date.now() + (p.timeout_ms ?? DEFAULT_WAIT_MS), now: Date.now, signal },
    );
    return done ?? { run: await kernel.getProcess(p.pid), reached: false };
  },

  'task.submit': async (p, { queue }) => {
    const submitted = await queue.submit(p.name, p.payload ?? null, {
      ...(p.lane ? { lane: p.lane } : {}),
      ...(p.priority === undefined ? {} : { priority: p.priority }),
      ...(p.idempotency_key ? { idempotencyKey: p.idempotency_key } : {}),
      ...(p.delay_ms === undefined ? {} : { delayMs: p.delay_ms }),
      ...(p.max_attempts === undefined ? {} : { attempts: p.max_attempts }),
      ...(p.timeout_ms === undefined ? {} : { timeoutMs: p.timeout_ms }),
      ...(p.session_key ? { session: p.session_key } : {}),
    });
    return { task: taskView(submitted.task), deduplicated: submitted.deduplicated };
  },
  'task.get': async (p, { queue }) => {
    const { task, attempts } = await queue.inspect(p.task_id);
    return { task: taskView(task), attempts: attempts.map(attemptView) };
  },
  'task.list': async (p, { kernel }) => ({
    tasks: (
      await kernel.store.listTasks({
        ...(p.states ? { states: p.states } : {}),
        ...(p.lane ? { lane: p.lane } : {}),
        limit: p.limit ?? 100,
      })
    ).map(taskView),
  }),
  'task.cancel': async (p, { queue }) => ({ task: taskView(await queue.cancel(p.task_id)) }),
  'task.dlq.list': async (p, { queue }) => ({
    tasks: (
      await queue.deadLetters({ ...(p.lane ? { lane: p.lane } : {}), limit: p.limit ?? 100 })
    ).map(taskView),
  }),
  'task.redrive': async (p, { queue }, caller) => ({
    task: taskView(await queue.redrive(p.task_id, caller.name)),
  }),
  'task.claim': async (p, { remote }, caller, signal) => {
    const claims = await remote.claim({
      workerId: remoteWorkerId(p.worker_name ?? caller.name, caller.connectionId),
      lanes: p.lanes,
      limit: p.limit ?? 1,
      ...(p.lease_ms === undefined ? {} : { leaseMs: p.lease_ms }),
      waitMs: p.wait_ms ?? 0,
      signal,
    });
    if (signal.aborted) {
      // The connection went away while the claim committed: hand the tasks straight back.
      await Promise.allSettled(claims.map((c) => remote.release(c.task.id, c.leaseToken)));
      return { claims: [] };
    }
    return {
      claims: claims.map((c) => ({
        task: taskView(c.task),
        attempt: c.attempt,
        attempt_token: formatAttemptToken(c.task.id, c.leaseToken),
        lease_expires_at: c.leaseExpiresAt,
      })),
    };
  },
  'task.heartbeat': async (p, { remote }, caller) => {
    const lease = attemptLease(p, caller);
    return { lease_expires_at: await remote.heartbeat(p.task_id, lease, p.lease_ms) };
  },
  'task.progress': async (p, { remote }, caller) => {
    await remote.progress(p.task_id, attemptLease(p, caller), p.data);
    return { ok: true };
  },
  'task.complete': async (p, { remote, queue }, caller) => {
    await remote.complete(p.task_id, attemptLease(p, caller), p.result ?? null);
    return { task: taskView(await queue.get(p.task_id)) };
  },
  'task.fail': async (p, { remote, queue }, caller) => {
    await remote.fail(p.task_id, attemptLease(p, caller), {
      message: p.error.message,
      ...(p.error.code === undefined ? {} : { code: p.error.code }),
      ...(p.error.retryable === undefined ? {} : { retryable: p.error.retryable }),
      ...(p.error.retry_after_ms === undefined ? {} : { retryAfterMs: p.error.retry_after_ms }),
      ...(p.error.details === undefined ? {} : { details: p.error.details }),
    });
    return { task: taskView(await queue.get(p.task_id)) };
  },
  'task.release': async (p, { remote, queue }, caller) => {
    await remote.release(p.task_id, attemptLease(p, caller));
    return { task: taskView(await queue.get(p.task_id)) };
  },

  'interrupt.list': async (p, { kernel }) => ({
    interrupts: await kernel.store.listInterrupts({
      ...(p.status ? { status: p.status } : {}),
      ...(p.pid ? { processId: p.pid } : {}),
      limit: p.limit ?? 100,
    }),
  }),
  'interrupt.get': async (p, { kernel }) => {
    const interrupt = await kernel.store.getInterrupt(p.interrupt_id);
    if (!interrupt) throw errors.notFound('interrupt', p.interrupt_id);
    return { interrupt };
  },
  'interrupt.resolve': async (p, { kernel }, caller) => {
    const { interrupt, process } = await kernel.resolveInterrupt(
      p.interrupt_id,
      p.response,
      caller.name,
    );
    return { interrupt, run: process };
  },
  'interrupt.cancel': async (p, { kernel }, caller) => ({
    interrupt: await kernel.interrupts.cancel(p.interrupt_id, caller.name),
  }),

  'ledger.verify': async (p, { kernel }) => verifyLedger(kernel.store, p.session_id),

  'policy.get': (p, services) => {
    const security = mustHaveSecurity(services);
    const shown = security.policy.pdp.policy();
    return Promise.resolve({
      version: shown.version,
      mode: shown.mode,
      policies: shown.policies.length,
      warnings: shown.warnings,
      files: security.policy.files,
      ...(p.cedar ? { cedar: shown.cedar } : {}),
    });
  },
  'policy.check': (p, services) =>
    Promise.resolve(
      mustHaveSecurity(services).policy.pdp.explain({
        principal: p.principal,
        action: p.action,
        resource: p.resource,
        context: p.context ?? {},
      }),
    ),
  'policy.reload': async (_p, services) => mustHaveSecurity(services).policy.reload(),
  'audit.query': async (p, { kernel }) => ({
    records: await kernel.store.readAudit({
      ...(p.after_seq === undefined ? {} : { afterSeq: p.after_seq }),
      ...(p.since === undefined ? {} : { since: p.since }),
      ...(p.decision ? { decision: p.decision } : {}),
      ...(p.principal ? { principal: p.principal } : {}),
      ...(p.action ? { action: p.action } : {}),
      limit: p.limit ?? 1_000,
    }),
  }),
  'audit.verify': async (_p, { kernel }) => kernel.store.verifyAudit(),
  'grant.create': async (p, services, caller) => ({
    grant: await mustHaveSecurity(services).grants.create({
      principal: p.principal,
      action: p.action,
      resource: p.resource,
      ask: p.ask ?? false,
      ...(p.budget === undefined ? {} : { budget: p.budget }),
      ...(p.expires_in_ms === undefined ? {} : { expires_in_ms: p.expires_in_ms }),
      ...(p.reason === undefined ? {} : { reason: p.reason }),
      created_by: caller.name,
    }),
  }),
  'grant.list': async (p, services) => ({
    grants: await mustHaveSecurity(services).grants.list({
      ...(p.principal ? { principal: p.principal } : {}),
      activeOnly: !p.all,
      limit: p.limit ?? 1_000,
    }),
  }),
  'grant.revoke': async (p, services, caller) => ({
    grant: await mustHaveSecurity(services).grants.revoke(
      p.grant_id,
      caller.name,
      p.reason ?? null,
    ),
  }),
  'quarantine.list': async (p, { kernel }) => ({
    records: await kernel.store.listQuarantine({
      ...(p.kind ? { kind: p.kind } : {}),
      ...(p.since === undefined ? {} : { since: p.since }),
      limit: p.limit ?? 100,
    }),
  }),
  'quarantine.get': async (p, { kernel }) => {
    const record = await kernel.store.getQuarantine(p.quarantine_id);
    if (!record) throw errors.notFound('quarantine record', p.quarantine_id);
    return { record };
  },
};

function mustHaveSecurity(services: CommandServices): Security {
  if (!services.security)
    throw new WardenError('INVALID_STATE', 'this server runs without a policy service');
  return services.security;
}

async function mustGetSession(
  store: Store,
  p: { session_id: string } | { key: string },
): Promise<SessionRecord> {
  const session =
    'session_id' in p ? await store.getSession(p.session_id) : await store.getSessionByKey(p.key);
  if (!session) throw errors.notFound('session', 'session_id' in p ? p.session_id : `key ${p.key}`);
  return session;
}

/**
 * The lease token an attempt token carries, when it names this task and the caller may use it:
 * a connection authenticated with an attempt token acts on that attempt only.
 */
function attemptLease(p: { task_id: string; attempt_token: string }, caller: Caller): string {
  const parsed = parseAttemptToken(p.attempt_token);
  if (!parsed || parsed.taskId !== p.task_id)
    throw new WardenError(
      'LEASE_LOST',
      `the attempt token does not belong to task ${p.task_id}; use the attempt_token task.claim returned for it`,
      { details: { task_id: p.task_id } },
    );
  if (caller.attempt && caller.attempt.taskId !== p.task_id)
    throw new WardenError(
      'FORBIDDEN',
      `this connection's attempt token is for task ${caller.attempt.taskId} only`,
      { details: { task_id: p.task_id } },
    );
  return parsed.leaseToken;
}
