/** Row ↔ record mapping shared by the adapters: JSON columns are text, times are integer ms. */
import type {
  AttemptRecord,
  InterruptRecord,
  ProcessRecord,
  ScheduleRecord,
  SessionRecord,
  TaskRecord,
  TokenRecord,
} from './types.ts';

export type Row = Record<string, unknown>;

const json = (value: unknown): unknown =>
  value === null || value === undefined ? null : JSON.parse(value as string);
export const toJson = (value: unknown): string | null =>
  value === undefined || value === null ? null : JSON.stringify(value);

export function sessionFromRow(r: Row): SessionRecord {
  return {
    id: r.id as string,
    key: r.key as string,
    settings: json(r.settings) as Record<string, unknown>,
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
    last_seq: r.last_seq as number,
    last_hash: r.last_hash as string,
    // Only once retention pruned something, so a fresh session reads back as it was inserted.
    ...((r.pruned_seq as number | undefined)
      ? {
          pruned_seq: r.pruned_seq as number,
          pruned_hash: (r.pruned_hash as string | null) ?? null,
        }
      : {}),
    // Only once updated, for the same reason.
    ...((r.version as number | undefined) ? { version: r.version as number } : {}),
  };
}

export function tokenFromRow(r: Row): TokenRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    scopes: JSON.parse(r.scopes as string) as TokenRecord['scopes'],
    secret_hash: r.secret_hash as string,
    created_at: r.created_at as number,
    expires_at: (r.expires_at as number | null) ?? null,
    revoked_at: (r.revoked_at as number | null) ?? null,
    last_used_at: (r.last_used_at as number | null) ?? null,
  };
}

export function tokenToParams(t: TokenRecord): Row {
  return { ...t, scopes: JSON.stringify(t.scopes) };
}

/** `workflow`: the run's parsed definition when the caller has it (else read from the row). */
export function processFromRow(r: Row, workflow?: ProcessRecord['workflow']): ProcessRecord {
  return {
    pid: r.pid as string,
    session_id: r.session_id as string,
    user_id: r.user_id as string,
    parent_pid: (r.parent_pid as string | null) ?? null,
    workflow_name: r.workflow_name as string,
    workflow: workflow ?? (json(r.workflow) as ProcessRecord['workflow']),
    workflow_hash: r.workflow_hash as string,
    source: (r.source as string | null) ?? null,
    state: r.state as ProcessRecord['state'],
    priority: r.priority as ProcessRecord['priority'],
    quota: json(r.quota) as ProcessRecord['quota'],
    usage: json(r.usage) as ProcessRecord['usage'],
    envelope: json(r.envelope) as ProcessRecord['envelope'],
    current_stage: r.current_stage as string,
    terminal_reason: (r.terminal_reason as ProcessRecord['terminal_reason']) ?? null,
    terminal_message: (r.terminal_message as string | null) ?? null,
    trace_id: r.trace_id as string,
    version: r.version as number,
    created_at: r.created_at as number,
    started_at: (r.started_at as number | null) ?? null,
    updated_at: r.updated_at as number,
    completed_at: (r.completed_at as number | null) ?? null,
  };
}

/** A run's row parameters; its workflow definition is stored apart, once per hash. */
export function processToParams(p: ProcessRecord): Row {
  return {
    pid: p.pid,
    session_id: p.session_id,
    user_id: p.user_id,
    parent_pid: p.parent_pid,
    workflow_name: p.workflow_name,
    workflow_hash: p.workflow_hash,
    source: p.source,
    state: p.state,
    priority: p.priority,
    quota: JSON.stringify(p.quota),
    usage: JSON.stringify(p.usage),
    envelope: JSON.stringify(p.envelope),
    current_stage: p.current_stage,
    terminal_reason: p.terminal_reason,
    terminal_message: p.terminal_message,
    trace_id: p.trace_id,
    version: p.version,
    created_at: p.created_at,
    started_at: p.started_at,
    updated_at: p.updated_at,
    completed_at: p.completed_at,
  };
}

export function taskFromRow(r: Row): TaskRecord {
  return {
    id: r.id as string,
    kind: r.kind as TaskRecord['kind'],
    name: r.name as string,
    lane: r.lane as string,
    session_id: r.session_id as string,
    process_id: (r.process_id as string | null) ?? null,
    payload: json(r.payload),
    state: r.state as TaskRecord['state'],
    priority: r.priority as number,
    sort_key: r.sort_key as number,
    available_at: r.available_at as number,
    attempts: r.attempts as number,
    max_attempts: r.max_attempts as number,
    lease_owner: (r.lease_owner as string | null) ?? null,
    lease_token: (r.lease_token as string | null) ?? null,
    lease_expires_at: (r.lease_expires_at as number | null) ?? null,
    claimed_at: (r.claimed_at as number | null) ?? null,
    idempotency_key: (r.idempotency_key as string | null) ?? null,
    last_error: json(r.last_error) as TaskRecord['last_error'],
    result: json(r.result),
    trace_id: r.trace_id as string,
    options: json(r.options) as TaskRecord['options'],
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
  };
}

/** Positional values of the cold row in TASK_DATA_COLUMNS order. */
export function taskDataRow(t: TaskRecord, n: number, out: unknown[] = []): unknown[] {
  out.push(
    n,
    t.id,
    t.name,
    t.session_id,
    t.process_id,
    JSON.stringify(t.payload ?? null),
    t.priority,
    t.max_attempts,
    t.idempotency_key,
    toJson(t.last_error),
    toJson(t.result),
    t.trace_id,
    JSON.stringify(t.options),
    t.created_at,
  );
  return out;
}

/** Positional values of the hot row in TASK_STATE_COLUMNS order. */
export function taskStateRow(t: TaskRecord, n: number, out: unknown[] = []): unknown[] {
  out.push(
    n,
    t.kind,
    t.lane,
    t.state,
    t.sort_key,
    t.available_at,
    t.attempts,
    t.lease_owner,
    t.lease_token,
    t.lease_expires_at,
    t.claimed_at ?? null,
    t.updated_at,
  );
  return out;
}

export function attemptFromRow(r: Row): AttemptRecord {
  return {
    task_id: r.task_id as string,
    attempt: r.attempt as number,
    lease_token: r.lease_token as string,
    worker_id: r.worker_id as string,
    started_at: r.started_at as number,
    ended_at: (r.ended_at as number | null) ?? null,
    outcome: (r.outcome as AttemptRecord['outcome']) ?? null,
    error: json(r.error) as AttemptRecord['error'],
  };
}

export function interruptFromRow(r: Row): InterruptRecord {
  return {
    id: r.id as string,
    session_id: r.session_id as string,
    process_id: (r.process_id as string | null) ?? null,
    kind: r.kind as InterruptRecord['kind'],
    stage: (r.stage as string | null) ?? null,
    step: (r.step as number | null) ?? null,
    prompt: r.prompt as string,
    data: json(r.data) as Record<string, unknown>,
    status: r.status as InterruptRecord['status'],
    response: json(r.response) as InterruptRecord['response'],
    resolver: (r.resolver as string | null) ?? null,
    trace_id: r.trace_id as string,
    created_at: r.created_at as number,
    expires_at: (r.expires_at as number | null) ?? null,
    resolved_at: (r.resolved_at as number | null) ?? null,
  };
}

export function interruptToParams(i: InterruptRecord): Row {
  return {
    ...i,
    data: JSON.stringify(i.data),
    response: toJson(i.response),
  };
}

export function scheduleFromRow(r: Row): ScheduleRecord {
  return {
    id: r.id as string,
    name: r.name as string,
    kind: r.kind as ScheduleRecord['kind'],
    expr: r.expr as string,
    job: r.job as string,
    lane: r.lane as string,
    payload: json(r.payload),
    options: json(r.options) as Record<string, unknown>,
    enabled: r.enabled === 1,
    next_run_at: r.next_run_at as number,
    last_run_at: (r.last_run_at as number | null) ?? null,
    last_task_id: (r.last_task_id as string | null) ?? null,
    failures: (r.failures as number | null) ?? 0,
    last_error: json(r.last_error) as ScheduleRecord['last_error'],
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
  };
}

export function scheduleToParams(s: ScheduleRecord): Row {
  return {
    ...s,
    payload: JSON.stringify(s.payload ?? null),
    options: JSON.stringify(s.options),
    enabled: s.enabled ? 1 : 0,
    failures: s.failures ?? 0,
    last_error: toJson(s.last_error),
  };
}
