/**
 * Typed wrappers over `call()`, one per ACP method (docs/protocol/acp.md#methods), grouped by
 * family: `client.sessions`, `client.runs`, `client.tasks`, `client.interrupts`,
 * `client.system`, `client.ledger`. Parameters are checked by the daemon (INVALID_PARAMS).
 */
import type { AcpMethod, ParamsOf, ResultOf } from './types.ts';

/** Per-call options. */
export interface CallOptions {
  /** Abort waiting for the answer (CANCELED); the daemon may still carry the call out. */
  readonly signal?: AbortSignal;
  /** @default the client's `timeoutMs` */
  readonly timeoutMs?: number;
}

export type Call = <M extends AcpMethod>(
  method: M,
  params: ParamsOf<M>,
  options?: CallOptions,
) => Promise<ResultOf<M>>;

/** Extra call time for methods that wait on the server (`run.wait`, `task.claim`). */
const withServerWait = (
  options: CallOptions | undefined,
  serverWaitMs: number,
  baseMs: number,
) => ({
  ...options,
  timeoutMs: (options?.timeoutMs ?? baseMs) + serverWaitMs,
});

export function sessionMethods(call: Call) {
  return {
    create: (params: ParamsOf<'session.create'>, o?: CallOptions) =>
      call('session.create', params, o),
    get: (params: ParamsOf<'session.get'>, o?: CallOptions) => call('session.get', params, o),
    list: (params: ParamsOf<'session.list'> = {}, o?: CallOptions) =>
      call('session.list', params, o),
    patch: (params: ParamsOf<'session.patch'>, o?: CallOptions) => call('session.patch', params, o),
    delete: (params: ParamsOf<'session.delete'>, o?: CallOptions) =>
      call('session.delete', params, o),
    history: (params: ParamsOf<'session.history'>, o?: CallOptions) =>
      call('session.history', params, o),
  };
}

export function runMethods(call: Call, baseTimeoutMs: number) {
  return {
    start: (params: ParamsOf<'run.start'>, o?: CallOptions) => call('run.start', params, o),
    get: (params: ParamsOf<'run.get'>, o?: CallOptions) => call('run.get', params, o),
    list: (params: ParamsOf<'run.list'> = {}, o?: CallOptions) => call('run.list', params, o),
    cancel: (params: ParamsOf<'run.cancel'>, o?: CallOptions) => call('run.cancel', params, o),
    /** The call's timeout is `timeout_ms` (default 30 s on the daemon) plus the client's. */
    wait: (params: ParamsOf<'run.wait'>, o?: CallOptions) =>
      call('run.wait', params, withServerWait(o, params.timeout_ms ?? 30_000, baseTimeoutMs)),
  };
}

export function taskMethods(call: Call, baseTimeoutMs: number) {
  return {
    submit: (params: ParamsOf<'task.submit'>, o?: CallOptions) => call('task.submit', params, o),
    get: (params: ParamsOf<'task.get'>, o?: CallOptions) => call('task.get', params, o),
    list: (params: ParamsOf<'task.list'> = {}, o?: CallOptions) => call('task.list', params, o),
    cancel: (params: ParamsOf<'task.cancel'>, o?: CallOptions) => call('task.cancel', params, o),
    dlqList: (params: ParamsOf<'task.dlq.list'> = {}, o?: CallOptions) =>
      call('task.dlq.list', params, o),
    redrive: (params: ParamsOf<'task.redrive'>, o?: CallOptions) => call('task.redrive', params, o),
    /** The call's timeout is `wait_ms` plus the client's. */
    claim: (params: ParamsOf<'task.claim'>, o?: CallOptions) =>
      call('task.claim', params, withServerWait(o, params.wait_ms ?? 0, baseTimeoutMs)),
    heartbeat: (params: ParamsOf<'task.heartbeat'>, o?: CallOptions) =>
      call('task.heartbeat', params, o),
    progress: (params: ParamsOf<'task.progress'>, o?: CallOptions) =>
      call('task.progress', params, o),
    complete: (params: ParamsOf<'task.complete'>, o?: CallOptions) =>
      call('task.complete', params, o),
    fail: (params: ParamsOf<'task.fail'>, o?: CallOptions) => call('task.fail', params, o),
    release: (params: ParamsOf<'task.release'>, o?: CallOptions) => call('task.release', params, o),
  };
}

export function interruptMethods(call: Call) {
  return {
    list: (params: ParamsOf<'interrupt.list'> = {}, o?: CallOptions) =>
      call('interrupt.list', params, o),
    get: (params: ParamsOf<'interrupt.get'>, o?: CallOptions) => call('interrupt.get', params, o),
    resolve: (params: ParamsOf<'interrupt.resolve'>, o?: CallOptions) =>
      call('interrupt.resolve', params, o),
    cancel: (params: ParamsOf<'interrupt.cancel'>, o?: CallOptions) =>
      call('interrupt.cancel', params, o),
  };
}

export function systemMethods(call: Call) {
  return {
    status: (o?: CallOptions) => call('system.status', {}, o),
    ping: (o?: CallOptions) => call('system.ping', {}, o),
  };
}

export function ledgerMethods(call: Call) {
  return {
    verify: (params: ParamsOf<'ledger.verify'> = {}, o?: CallOptions) =>
      call('ledger.verify', params, o),
  };
}

export function securityMethods(call: Call) {
  return {
    policy: {
      get: (params: ParamsOf<'policy.get'> = {}, o?: CallOptions) => call('policy.get', params, o),
      check: (params: ParamsOf<'policy.check'>, o?: CallOptions) => call('policy.check', params, o),
      reload: (o?: CallOptions) => call('policy.reload', {}, o),
    },
    audit: {
      query: (params: ParamsOf<'audit.query'> = {}, o?: CallOptions) =>
        call('audit.query', params, o),
      verify: (o?: CallOptions) => call('audit.verify', {}, o),
    },
    grants: {
      create: (params: ParamsOf<'grant.create'>, o?: CallOptions) =>
        call('grant.create', params, o),
      list: (params: ParamsOf<'grant.list'> = {}, o?: CallOptions) => call('grant.list', params, o),
      revoke: (params: ParamsOf<'grant.revoke'>, o?: CallOptions) =>
        call('grant.revoke', params, o),
    },
    quarantine: {
      list: (params: ParamsOf<'quarantine.list'> = {}, o?: CallOptions) =>
        call('quarantine.list', params, o),
      get: (params: ParamsOf<'quarantine.get'>, o?: CallOptions) =>
        call('quarantine.get', params, o),
    },
  };
}

export type SessionMethods = ReturnType<typeof sessionMethods>;
export type RunMethods = ReturnType<typeof runMethods>;
export type TaskMethods = ReturnType<typeof taskMethods>;
export type InterruptMethods = ReturnType<typeof interruptMethods>;
export type SystemMethods = ReturnType<typeof systemMethods>;
export type LedgerMethods = ReturnType<typeof ledgerMethods>;
