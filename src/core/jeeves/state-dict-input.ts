/**
 * Reading the state dict a client sends in `InitializeSessionRequest.envelope` (§3.2, Go's
 * `FromStateDict`): what a Warden run needs to start where the envelope left off.
 *
 * Lenient where Go is: a missing key (or `null`) takes a new envelope's default, unknown keys
 * (the Python client's `request_context`, `max_*`, `max_stages`, `processing_history`, …) are
 * ignored, and output values that are not objects are dropped. Unlike Go, a value of the wrong
 * type is not silently replaced by its default: it is INVALID_PARAMS naming the key, because
 * dropping a client's counters or interrupt would change what the run does.
 */
import { INTERRUPT_KINDS, INTERRUPT_STATUSES, type InterruptKind } from '../interrupt.ts';
import { isJsonObject, type JsonObject } from '../json.ts';
import { describeValue, invalidParams, type ParamIssue } from '../params.ts';
import { TERMINAL_REASONS, type TerminalReason } from '../quota.ts';
import { END } from '../workflow/validate.ts';
import { decodeJsonObject } from './json-bytes.ts';
import { parseRfc3339 } from './rfc3339.ts';
import type { JeevesIdentity, JeevesInterruptView, JeevesPassthrough } from './state-dict.ts';

export interface StateDictInputOptions {
  /** A new id with `prefix` (`env_`, `req_`, `sess_`), for identity fields the client left out. */
  readonly newId: (prefix: 'env_' | 'req_' | 'sess_') => string;
  /** Now, in epoch ms: a missing `received_at`. */
  readonly now: number;
}

/** What InitializeSession needs to start a Warden run from a client's envelope. */
export interface JeevesSessionStart {
  readonly identity: JeevesIdentity;
  /** Object outputs by key (non-object values dropped). */
  readonly outputs: Record<string, JsonObject>;
  /** `start` for a new envelope; see pipeline-workflow.ts `initialStage`. */
  readonly currentStage: string;
  /** Counters the envelope carries (a resumed envelope keeps them, §3.2). */
  readonly counters: {
    readonly iteration: number;
    readonly llm_call_count: number;
    readonly agent_hop_count: number;
  };
  readonly interruptPending: boolean;
  /** The envelope's interrupt, with the person's response if it has one. */
  readonly interrupt: JeevesInterruptView | null;
  /**
   * Set when the envelope arrives terminated: the session starts terminated and answers
   * TERMINATE (defect 20). The reason is the envelope's `terminal_reason`; without one,
   * `completed` at stage `end`, else `user_cancelled` (the caller ended it, not a failure).
   */
  readonly terminated: { readonly reason: TerminalReason; readonly message: string } | null;
  readonly completedAt: number | null;
  readonly metadata: JsonObject;
  readonly passthrough: JeevesPassthrough;
}

const WHERE = 'envelope';

/**
 * Reads a client's state dict (bytes, text, or an already parsed object); empty input is a
 * new envelope.
 *
 * @throws WardenError INVALID_PARAMS `envelope: <key>: expected …` for invalid UTF-8 or JSON,
 *   a non-object, or any key of the wrong type (every such key is listed).
 */
export function fromStateDict(
  input: Uint8Array | string | JsonObject,
  options: StateDictInputOptions,
): JeevesSessionStart {
  const raw =
    typeof input === 'string' || input instanceof Uint8Array
      ? decodeJsonObject(input, WHERE, { emptyIsObject: true })
      : input;
  const r = new Reader(raw);
  const identity: JeevesIdentity = {
    envelope_id: r.string('envelope_id') ?? options.newId('env_'),
    request_id: r.string('request_id') ?? options.newId('req_'),
    user_id: r.string('user_id') ?? 'anonymous',
    session_id: r.string('session_id') ?? options.newId('sess_'),
    raw_input: r.string('raw_input') ?? '',
    received_at: r.time('received_at') ?? options.now,
  };
  const currentStage = r.string('current_stage') || 'start';
  const terminalReason = r.reason('terminal_reason');
  const terminated = r.bool('terminated') ?? false;
  const terminationText = r.string('termination_reason');
  const start: JeevesSessionStart = {
    identity,
    outputs: r.outputs('outputs'),
    currentStage,
    counters: {
      iteration: r.count('iteration') ?? 0,
      llm_call_count: r.count('llm_call_count') ?? 0,
      agent_hop_count: r.count('agent_hop_count') ?? 0,
    },
    interruptPending: r.bool('interrupt_pending') ?? false,
    interrupt: r.interrupt('interrupt', options.now),
    terminated: terminated
      ? {
          reason: terminalReason ?? (currentStage === END ? 'completed' : 'user_cancelled'),
          message: terminationText ?? 'the envelope was already terminated',
        }
      : null,
    completedAt: r.time('completed_at'),
    metadata: r.object('metadata') ?? {},
    passthrough: {
      active_stages: r.map('active_stages', 'boolean') ?? {},
      completed_stage_set: r.map('completed_stage_set', 'boolean') ?? {},
      failed_stages: r.map('failed_stages', 'string') ?? {},
      parallel_mode: r.bool('parallel_mode') ?? false,
      completed_stages: r.objects('completed_stages') ?? [],
      current_stage_number: r.count('current_stage_number') ?? 1,
      all_goals: r.strings('all_goals') ?? [],
      remaining_goals: r.strings('remaining_goals') ?? [],
      goal_completion_status: r.map('goal_completion_status', 'string') ?? {},
      prior_plans: r.objects('prior_plans') ?? [],
      loop_feedback: r.strings('loop_feedback') ?? [],
      errors: r.objects('errors') ?? [],
    },
  };
  if (r.issues.length > 0) throw invalidParams(WHERE, r.issues);
  return start;
}

/** Typed reads of one object; a wrong type is recorded as an issue and reads as absent. */
class Reader {
  readonly issues: ParamIssue[] = [];
  readonly #raw: JsonObject;
  readonly #prefix: string;

  constructor(raw: JsonObject, prefix = '') {
    this.#raw = raw;
    this.#prefix = prefix;
  }

  string(key: string): string | undefined {
    return this.#read(key, 'a string', (v): v is string => typeof v === 'string');
  }

  bool(key: string): boolean | undefined {
    return this.#read(key, 'true or false', (v): v is boolean => typeof v === 'boolean');
  }

  count(key: string): number | undefined {
    return this.#read(
      key,
      'an integer ≥ 0',
      (v): v is number => Number.isSafeInteger(v) && (v as number) >= 0,
    );
  }

  object(key: string): JsonObject | undefined {
    return this.#read(key, 'an object', isJsonObject);
  }

  time(key: string): number | null {
    const text = this.string(key);
    if (text === undefined) return null;
    const ms = parseRfc3339(text);
    if (ms === null) this.#issue(key, 'an RFC 3339 time such as 2026-01-02T03:04:05Z', text);
    return ms;
  }

  strings(key: string): string[] | undefined {
    return this.#read(
      key,
      'an array of strings',
      (v): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string'),
    );
  }

  objects(key: string): JsonObject[] | undefined {
    return this.#read(
      key,
      'an array of objects',
      (v): v is JsonObject[] => Array.isArray(v) && v.every(isJsonObject),
    );
  }

  map<T extends 'boolean' | 'string'>(
    key: string,
    type: T,
  ): Record<string, T extends 'boolean' ? boolean : string> | undefined {
    return this.#read<Record<string, T extends 'boolean' ? boolean : string>>(
      key,
      `an object of ${type === 'boolean' ? 'booleans' : 'strings'}`,
      (v) => isJsonObject(v) && Object.values(v).every((x) => typeof x === type),
    );
  }

  /** Outputs: an object whose non-object values are dropped (Go keeps only objects). */
  outputs(key: string): Record<string, JsonObject> {
    const all = this.object(key) ?? {};
    const out: Record<string, JsonObject> = {};
    for (const [k, v] of Object.entries(all)) if (isJsonObject(v)) out[k] = v;
    return out;
  }

  /** A lowercase terminal reason; `''` and `unspecified` (the Python default) mean none. */
  reason(key: string): TerminalReason | null {
    const text = this.string(key);
    if (text === undefined || text === '' || text === 'unspecified') return null;
    if ((TERMINAL_REASONS as readonly string[]).includes(text)) return text as TerminalReason;
    this.#issue(key, `one of ${TERMINAL_REASONS.join(', ')}`, text);
    return null;
  }

  interrupt(key: string, now: number): JeevesInterruptView | null {
    const value = this.object(key);
    if (value === undefined) return null;
    const r = new Reader(value, `${this.#prefix}${key}.`);
    const kindText = r.string('kind');
    let kind: InterruptKind | null = null;
    if (kindText !== undefined && kindText !== '' && kindText !== 'unspecified') {
      if ((INTERRUPT_KINDS as readonly string[]).includes(kindText))
        kind = kindText as InterruptKind;
      else r.#issue('kind', `one of ${INTERRUPT_KINDS.join(', ')}`, kindText);
    }
    const statusText = r.string('status');
    const status = INTERRUPT_STATUSES.find((s) => s === statusText);
    if (statusText !== undefined && status === undefined && statusText !== 'unspecified') {
      r.#issue('status', `one of ${INTERRUPT_STATUSES.join(', ')}`, statusText);
    }
    const question = r.string('question') ?? '';
    const message = r.string('message') ?? '';
    const view: JeevesInterruptView = {
      id: r.string('id') ?? '',
      kind,
      prompt: question !== '' ? question : message,
      data: r.object('data') ?? null,
      ...(status === undefined ? {} : { status }),
      created_at: r.time('created_at') ?? now,
      expires_at: r.time('expires_at'),
      response: r.response('response'),
    };
    this.issues.push(...r.issues);
    return view;
  }

  /** `{received_at, text?, approved?, decision?, data?}`; `approved: false` is kept (defect 14). */
  response(key: string): JeevesInterruptView['response'] {
    const value = this.object(key);
    if (value === undefined) return null;
    const r = new Reader(value, `${this.#prefix}${key}.`);
    const text = r.string('text');
    const approved = r.bool('approved');
    const decision = r.string('decision');
    const data = r.object('data');
    // Go writes received_at; the Python client's InterruptResponse writes resolved_at.
    const receivedAt = r.time('received_at') ?? r.time('resolved_at');
    this.issues.push(...r.issues);
    return {
      ...(text === undefined ? {} : { text }),
      ...(approved === undefined ? {} : { approved }),
      ...(decision === undefined ? {} : { decision }),
      ...(data === undefined ? {} : { data }),
      ...(receivedAt === null ? {} : { received_at: receivedAt }),
    };
  }

  #read<T>(key: string, what: string, test: (v: unknown) => v is T): T | undefined;
  #read<T>(key: string, what: string, test: (v: unknown) => boolean): T | undefined;
  #read<T>(key: string, what: string, test: (v: unknown) => boolean): T | undefined {
    const value = this.#raw[key];
    if (value === undefined || value === null) return undefined;
    if (test(value)) return value as T;
    this.#issue(key, what, value);
    return undefined;
  }

  #issue(key: string, what: string, got: unknown): void {
    this.issues.push({
      path: `${this.#prefix}${key}`,
      message: `expected ${what} (got ${describeValue(got)})`,
    });
  }
}
