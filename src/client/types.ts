/**
 * Wire types of ACP (docs/protocol/acp.md): method parameters, results and the records they
 * carry. The client runs in programs without a database, so it does not import the store's
 * record types; these interfaces mirror them (`warden … --json` shapes) and stay loose where
 * the server may add fields.
 */

/** A protocol version range, both ends inclusive. */
export interface ProtocolRange {
  readonly min: number;
  readonly max: number;
}

/** Who is calling, sent in `system.hello`. */
export interface ClientInfo {
  readonly name: string;
  readonly version: string;
}

/** The answer to `system.hello`. */
export interface HelloResult {
  readonly protocol: number;
  readonly server: {
    readonly name: string;
    readonly version: string;
    readonly protocol: ProtocolRange;
  };
  readonly connection_id: string;
  readonly principal: { readonly kind: string; readonly id: string; readonly name?: string };
  readonly scopes: readonly string[];
  readonly limits: {
    readonly max_frame_bytes: number;
    readonly replay_page_size: number;
    readonly outbound_high_water_bytes: number;
  };
}

/** One entry of a session's hash-chained log. `seq` is contiguous per session. */
export interface EventRecord {
  readonly session_id: string;
  readonly seq: number;
  readonly type: string;
  readonly ts: number;
  readonly trace_id: string;
  readonly process_id: string | null;
  readonly task_id: string | null;
  readonly attempt: number | null;
  readonly data: unknown;
  readonly prev_hash: string;
  readonly hash: string;
}

export interface SessionRecord {
  readonly id: string;
  readonly key: string;
  readonly settings: Record<string, unknown>;
  readonly created_at: number;
  readonly updated_at: number;
  readonly last_seq: number;
  readonly last_hash: string;
  readonly [field: string]: unknown;
}

/** A run (process). Workflow, envelope, quota and usage are left loose. */
export interface RunRecord {
  readonly pid: string;
  readonly session_id: string;
  readonly state: string;
  readonly current_stage: string;
  readonly terminal_reason: string | null;
  readonly terminal_message: string | null;
  readonly created_at: number;
  readonly updated_at: number;
  readonly [field: string]: unknown;
}

export interface TaskErrorRecord {
  readonly code: string;
  readonly message: string;
  readonly retryable?: boolean;
  readonly [field: string]: unknown;
}

/** A task; its lease token is never sent. */
export interface TaskRecord {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly lane: string;
  readonly session_id: string;
  readonly process_id: string | null;
  readonly payload: unknown;
  readonly state: string;
  readonly priority: number;
  readonly attempts: number;
  readonly max_attempts: number;
  readonly lease_expires_at: number | null;
  readonly last_error: TaskErrorRecord | null;
  readonly result: unknown;
  readonly created_at: number;
  readonly updated_at: number;
  readonly [field: string]: unknown;
}

export interface AttemptRecord {
  readonly task_id: string;
  readonly attempt: number;
  readonly started_at: number;
  readonly ended_at: number | null;
  readonly outcome: string | null;
  readonly [field: string]: unknown;
}

export interface InterruptRecord {
  readonly id: string;
  readonly session_id: string;
  readonly process_id: string | null;
  readonly kind: string;
  readonly prompt: string;
  readonly status: string;
  readonly response: unknown;
  readonly created_at: number;
  readonly [field: string]: unknown;
}

/** One claim handed to a remote worker by `task.claim`. Keep `attempt_token` secret. */
export interface Claim {
  readonly task: TaskRecord;
  readonly attempt: number;
  readonly attempt_token: string;
  readonly lease_expires_at: number;
}

/** The error a remote worker reports with `task.fail`. */
export interface TaskFailure {
  readonly message: string;
  readonly code?: string;
  readonly retryable?: boolean;
  readonly retry_after_ms?: number;
  readonly details?: Record<string, unknown>;
}

type Empty = Record<string, never>;

/**
 * Every ACP method with its parameters and result. `call<M>()` and the typed wrappers are
 * checked against this map.
 */
export interface AcpMethods {
  'system.hello': {
    params: { protocol: ProtocolRange; client: ClientInfo };
    result: HelloResult;
  };
  'system.ping': { params: Empty; result: { now: number } };
  'system.status': { params: Empty; result: Record<string, unknown> };
  'session.create': {
    params: { key: string; settings?: Record<string, unknown> };
    result: { session: SessionRecord; created: boolean };
  };
  'session.get': {
    params: { session_id: string } | { key: string };
    result: { session: SessionRecord };
  };
  'session.list': { params: { limit?: number }; result: { sessions: SessionRecord[] } };
  'session.patch': {
    params: { session_id: string; settings: Record<string, unknown>; expect_updated_at?: number };
    result: { session: SessionRecord };
  };
  'session.delete': {
    params: { session_id: string };
    result: { deleted: Record<string, number> };
  };
  'session.history': {
    params: { session_id: string; from_seq?: number; limit?: number };
    result: { events: EventRecord[]; last_seq: number; more: boolean };
  };
  'events.subscribe': {
    params: { session_id: string; from_seq?: number };
    result: { subscription_id: string; session_id: string; from_seq: number };
  };
  'events.unsubscribe': { params: { subscription_id: string }; result: { ok: true } };
  'run.start': {
    params: {
      workflow: Record<string, unknown>;
      input?: unknown;
      session_key?: string;
      priority?: string;
      metadata?: Record<string, unknown>;
      user_id?: string;
    };
    result: { run: RunRecord };
  };
  'run.get': { params: { pid: string }; result: { run: RunRecord } };
  'run.list': {
    params: { states?: string[]; session_id?: string; limit?: number };
    result: { runs: RunRecord[] };
  };
  'run.cancel': { params: { pid: string; message?: string }; result: { run: RunRecord } };
  'run.wait': {
    params: { pid: string; until?: 'terminated' | 'waiting'; timeout_ms?: number };
    result: { run: RunRecord; reached: boolean };
  };
  'task.submit': {
    params: {
      name: string;
      payload?: unknown;
      lane?: string;
      priority?: string | number;
      idempotency_key?: string;
      delay_ms?: number;
      max_attempts?: number;
      timeout_ms?: number;
      session_key?: string;
    };
    result: { task: TaskRecord; deduplicated: boolean };
  };
  'task.get': {
    params: { task_id: string };
    result: { task: TaskRecord; attempts: AttemptRecord[] };
  };
  'task.list': {
    params: { states?: string[]; lane?: string; limit?: number };
    result: { tasks: TaskRecord[] };
  };
  'task.cancel': { params: { task_id: string; reason?: string }; result: { task: TaskRecord } };
  'task.dlq.list': { params: { lane?: string; limit?: number }; result: { tasks: TaskRecord[] } };
  'task.redrive': { params: { task_id: string }; result: { task: TaskRecord } };
  'task.claim': {
    params: {
      lanes: string[];
      limit?: number;
      lease_ms?: number;
      wait_ms?: number;
      worker_name?: string;
    };
    result: { claims: Claim[] };
  };
  'task.heartbeat': {
    params: { task_id: string; attempt_token: string; lease_ms?: number };
    result: { lease_expires_at: number };
  };
  'task.progress': {
    params: { task_id: string; attempt_token: string; data: unknown };
    result: { ok: true };
  };
  'task.complete': {
    params: { task_id: string; attempt_token: string; result?: unknown };
    result: { task: TaskRecord };
  };
  'task.fail': {
    params: { task_id: string; attempt_token: string; error: TaskFailure };
    result: { task: TaskRecord };
  };
  'task.release': {
    params: { task_id: string; attempt_token: string };
    result: { task: TaskRecord };
  };
  'interrupt.list': {
    params: { status?: string; pid?: string; limit?: number };
    result: { interrupts: InterruptRecord[] };
  };
  'interrupt.get': { params: { interrupt_id: string }; result: { interrupt: InterruptRecord } };
  'interrupt.resolve': {
    params: {
      interrupt_id: string;
      /** As `warden approve|deny|answer` sends it: `{approved, text?}` or `{text}`. */
      response: {
        approved?: boolean;
        text?: string;
        decision?: string;
        data?: unknown;
        grant?: Record<string, number>;
      };
    };
    result: { interrupt: InterruptRecord; run: RunRecord | null };
  };
  'interrupt.cancel': {
    params: { interrupt_id: string; reason?: string };
    result: { interrupt: InterruptRecord };
  };
  'ledger.verify': { params: { session_id?: string }; result: Record<string, unknown> };
  'policy.get': { params: { cedar?: boolean }; result: Record<string, unknown> };
  'policy.check': {
    params: {
      principal: string;
      action: string;
      resource: string;
      context?: Record<string, unknown>;
    };
    result: Record<string, unknown>;
  };
  'policy.reload': {
    params: Record<string, never>;
    result: { version: string; previous: string; changed: boolean; files: string[] };
  };
  'audit.query': {
    params: {
      after_seq?: number;
      since?: number;
      decision?: 'allow' | 'deny' | 'ask';
      principal?: string;
      action?: string;
      limit?: number;
    };
    result: { records: Array<Record<string, unknown>> };
  };
  'audit.verify': { params: Record<string, never>; result: Record<string, unknown> };
  'grant.create': {
    params: {
      principal: string;
      action: string;
      resource: string;
      ask?: boolean;
      budget?: number;
      expires_in_ms?: number;
      reason?: string;
    };
    result: { grant: Record<string, unknown> };
  };
  'grant.list': {
    params: { principal?: string; all?: boolean; limit?: number };
    result: { grants: Array<Record<string, unknown>> };
  };
  'grant.revoke': {
    params: { grant_id: string; reason?: string };
    result: { grant: Record<string, unknown> };
  };
  'quarantine.list': {
    params: { kind?: string; since?: number; limit?: number };
    result: { records: Array<Record<string, unknown>> };
  };
  'quarantine.get': {
    params: { quarantine_id: string };
    result: { record: Record<string, unknown> };
  };
}

export type AcpMethod = keyof AcpMethods;
export type ParamsOf<M extends AcpMethod> = AcpMethods[M]['params'];
export type ResultOf<M extends AcpMethod> = AcpMethods[M]['result'];

/** Params of the `system.backpressure` notification. */
export interface BackpressureNotice {
  readonly buffered_bytes: number;
  readonly high_water_bytes: number;
  readonly message: string;
}

/** Params of the `system.shutdown` notification. */
export interface ShutdownNotice {
  readonly reason: string;
  readonly grace_ms: number;
}
