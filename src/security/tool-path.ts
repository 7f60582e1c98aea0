/**
 * The one path every tool call takes (DESIGN.md §7, §8):
 *
 *   validate arguments → guards that must see the call (real path, parsed command, URL) →
 *   decide (`tool.call` on the tool, then each capability the call needs; every decision
 *   audited) → block on a guard's verdict → approval when a decision is `ask` (a confirmation
 *   interrupt showing the exact call; timeout = deny) → spend grant budgets → effect journal
 *   (one key per call: a retried step gets the recorded answer, never a second effect) →
 *   execute with a timeout and the step's AbortSignal, secrets resolved only here → redact →
 *   prompt-injection score of the answer → record (`tool.called` / `tool.denied`).
 *
 * The policy version is pinned when the step's tools are built (once per attempt): every
 * decision of the attempt is made under it, even if the policy is reloaded meanwhile.
 */
import {
  canonicalJson,
  coerceError,
  type DecisionRequest,
  type DecisionResult,
  isWardenError,
  sha256Hex,
  WardenError,
} from '../core/index.ts';
import type { Kernel, StepContext } from '../kernel/index.ts';
import type {
  AgentContext,
  CallOptions,
  StepTools,
  StepToolsFactory,
  ToolCallResult,
  ToolOutput,
  ToolSpec,
} from '../runtime/index.ts';
import type { ArgsValidator } from './tools/args-validator.ts';
import type { GuardedTool, Inspection } from './tools/guarded-tool.ts';

/** A policy version held for one attempt. */
export interface PinnedPolicy {
  readonly version: string;
  /**
   * Makes sure the version is loaded (read back from the store when newer versions pushed it
   * out of memory); call it right before `decide`.
   */
  ensure(): Promise<void>;
  decide(request: DecisionRequest): DecisionResult;
}

/** What an audit record needs besides the decision. */
export interface AuditEntry {
  readonly request: DecisionRequest;
  readonly result: DecisionResult;
  readonly trace_id: string;
  readonly context: Record<string, unknown>;
}

export interface QuarantineEntry {
  readonly kind: string;
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly reasons: readonly string[];
  readonly context: Record<string, unknown>;
  readonly process_id: string | null;
  readonly session_id: string;
  readonly trace_id: string;
}

export interface InjectionVerdict {
  readonly score: number;
  readonly verdict: 'clean' | 'review' | 'block';
  readonly signals: ReadonlyArray<{ readonly code: string }>;
}

/** The tools a stage may use: built-ins and its MCP servers' tools, by name. */
export interface ToolCatalog {
  get(name: string): Promise<GuardedTool | undefined>;
  /** The tools these names (and globs like `mcp.files.*`) name. */
  expand(names: readonly string[]): Promise<readonly GuardedTool[]>;
}

export interface ToolPathDeps {
  readonly kernel: Kernel;
  /** Pins the active policy version (once per attempt). */
  readonly pinPolicy: () => Promise<PinnedPolicy>;
  /** Appends audit records; resolves once they are committed. */
  readonly audit: (entries: readonly AuditEntry[]) => Promise<void>;
  /** Keeps a blocked action; answers its id. */
  readonly quarantine: (entry: QuarantineEntry) => Promise<string>;
  /** Spends one use of a grant; POLICY_DENIED when it is revoked, expired or used up. */
  readonly useGrant: (grantId: string) => Promise<void>;
  /** Replaces `{secret: NAME}` references with their values (SECRET_MISSING when unset). */
  readonly resolveSecrets: (value: unknown) => unknown;
  /** The names of the secrets a value references. */
  readonly secretNames: (value: unknown) => readonly string[];
  /** Removes every secret value (and known credential shapes) from a value. */
  readonly redact: <T>(value: T) => T;
  readonly catalog: (step: StepContext) => ToolCatalog;
  readonly validator: ArgsValidator;
  /** Scores untrusted text a tool returned; omit to skip. */
  readonly scoreInjection?: (text: string) => InjectionVerdict;
  /** Milliseconds a call may run. @default 30_000 */
  readonly defaultTimeoutMs?: number;
  /** How long a person has to approve an `ask` (default: the confirmation TTL, 1 h). */
  readonly approvalTtlMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Characters of a tool's answer kept in its `tool.called` event. */
const EVENT_OUTPUT_CHARS = 2_048;

export function createToolPath(deps: ToolPathDeps): StepToolsFactory {
  return (step, ctx) => new StepToolPath(deps, step, ctx);
}

/** The principal a step's calls are decided for: its workflow and stage. */
export function agentPrincipal(step: Pick<StepContext, 'workflow' | 'stage'>): string {
  return `agent:${step.workflow.name}/${step.stage.name}`;
}

class StepToolPath implements StepTools {
  readonly #deps: ToolPathDeps;
  readonly #step: StepContext;
  readonly #ctx: AgentContext;
  readonly #principal: string;
  readonly #catalog: ToolCatalog;
  readonly #pinned: Promise<PinnedPolicy>;

  constructor(deps: ToolPathDeps, step: StepContext, ctx: AgentContext) {
    this.#deps = deps;
    this.#step = step;
    this.#ctx = ctx;
    this.#principal = agentPrincipal(step);
    this.#catalog = deps.catalog(step);
    // Pinned when the attempt starts (its tools are built then), not at its first call: a
    // reload while the agent works before calling must not change the attempt's version.
    this.#pinned = deps.pinPolicy();
    this.#pinned.catch(() => undefined); // a failure surfaces at the first call
  }

  /** The attempt's policy version, kept for the whole attempt. */
  #policy(): Promise<PinnedPolicy> {
    return this.#pinned;
  }

  async specs(names: readonly string[]): Promise<readonly ToolSpec[]> {
    const tools = await this.#catalog.expand(names);
    return tools.map(({ name, description, inputSchema, effect }) => ({
      name,
      description,
      inputSchema,
      effect,
    }));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async call(
    name: string,
    rawArgs: Record<string, unknown>,
    options: CallOptions,
  ): Promise<ToolCallResult> {
    const policy = await this.#policy();
    const shown = this.#deps.redact(rawArgs);
    const call = { tool: name, key: options.key, args: shown };
    const tool = await this.#catalog.get(name);
    if (!tool) {
      // Unknown capability = deny, audited like any decision.
      await policy.ensure();
      const result = policy.decide({
        principal: this.#principal,
        action: 'tool.call',
        resource: `tool:${name}`,
        context: { known: false },
      });
      await this.#audit([{ action: 'tool.call', resource: `tool:${name}`, result }], call);
      return this.#denied(
        call,
        'POLICY_DENIED',
        [`no tool named ${name} is available to this stage`, ...result.reasons],
        policy.version,
      );
    }
    const invalid = this.#deps.validator.check(tool, rawArgs);
    if (invalid) {
      return this.#denied(call, 'INVALID_PARAMS', [invalid], policy.version);
    }

    // Guards that must see the call before it is decided.
    let inspection: Inspection = { checks: [] };
    try {
      if (tool.inspect)
        inspection = await tool.inspect(rawArgs, {
          principal: this.#principal,
          signal: this.#ctx.signal,
        });
    } catch (error) {
      return this.#blocked(call, coerceError(error), policy.version);
    }

    // Decide: the tool itself, each capability the call needs, each secret it references.
    const requests: Array<Omit<DecisionRequest, 'principal'>> = [
      {
        action: 'tool.call',
        resource: `tool:${name}`,
        context: { effect: tool.effect, usage: this.#usage() },
      },
      ...inspection.checks.map((c) => ({
        ...c,
        context: { ...c.context, usage: this.#usage() },
      })),
      ...this.#deps
        .secretNames(rawArgs)
        .map((secret) => ({ action: 'secret.use', resource: `secret:${secret}` })),
    ];
    await policy.ensure();
    const decided = requests.map((r) => ({
      action: r.action,
      resource: r.resource,
      result: policy.decide({ principal: this.#principal, ...r }),
    }));
    await this.#audit(decided, {
      ...call,
      ...(inspection.findings ? { findings: inspection.findings } : {}),
    });
    const denied = decided.filter((d) => d.result.decision === 'deny');
    if (denied.length > 0) {
      return this.#denied(
        call,
        'POLICY_DENIED',
        denied.flatMap((d) => d.result.reasons),
        policy.version,
        inspection.findings,
      );
    }
    const asks = decided.filter((d) => d.result.decision === 'ask');
    if (asks.length > 0) {
      // An approval is for the exact call it showed: another call under the same key (a model
      // asked again after a resume, by a server whose call ids repeat) is asked about anew.
      const exact = sha256Hex(canonicalJson({ tool: name, args: rawArgs })).slice(0, 32);
      const approval = await this.#approve(
        name,
        call,
        asks.flatMap((d) => d.result.reasons),
        policy.version,
        `${options.key}#${exact}`,
      );
      if (approval) return approval;
    }

    const args = inspection.args ?? rawArgs;
    const timeoutMs = options.timeoutMs ?? this.#deps.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    const started = Date.now();
    let executed = false;
    let output: ToolOutput;
    try {
      output = await this.#ctx.effect(
        `tool/${options.key}`,
        { tool: name, args: shown, request: sha256Hex(canonicalJson(rawArgs)).slice(0, 32) },
        async () => {
          executed = true;
          // Grants are spent only by a call that runs (not by a replay).
          for (const d of decided)
            if (d.result.grant_id) await this.#deps.useGrant(d.result.grant_id);
          const resolved = this.#deps.resolveSecrets(args) as Record<string, unknown>;
          let answer: ToolOutput;
          try {
            answer = await this.#execute(tool, resolved, timeoutMs);
          } catch (error) {
            // The journal records a failure's message: it must not carry a secret either.
            const failure = coerceError(error);
            throw new WardenError(failure.code, this.#deps.redact(failure.message), {
              retryable: failure.retryable,
              ...(failure.details === undefined
                ? {}
                : { details: this.#deps.redact(failure.details) }),
              ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
            });
          }
          return this.#deps.redact(answer);
        },
        { tool: name },
      );
    } catch (error) {
      const failure = coerceError(error);
      if (failure.code === 'GUARD_BLOCKED') return this.#blocked(call, failure, policy.version);
      if (failure.code === 'POLICY_DENIED' || failure.code === 'SECRET_MISSING')
        return this.#denied(call, failure.code, [failure.message], policy.version);
      // The budget, the lease, a cancel: the step itself must stop.
      if (
        failure.code === 'QUOTA_EXCEEDED' ||
        failure.code === 'LEASE_LOST' ||
        failure.code === 'CANCELED' ||
        this.#ctx.signal.aborted
      )
        throw failure;
      const message = this.#deps.redact(failure.message);
      await this.#emit('tool.called', {
        tool: name,
        call: options.key,
        ok: false,
        error: { code: failure.code, message },
        duration_ms: Date.now() - started,
        policy_version: policy.version,
      });
      return { ok: false, code: failure.code, output: { code: failure.code, message } };
    }

    const screened = await this.#screen(call, output, policy.version);
    await this.#emit('tool.called', {
      tool: name,
      call: options.key,
      ok: !output.is_error,
      replayed: !executed,
      duration_ms: Date.now() - started,
      policy_version: policy.version,
      output: excerpt(screened.content),
      ...(inspection.findings ? { findings: inspection.findings } : {}),
      ...(screened.injection ? { injection: screened.injection } : {}),
    });
    return {
      ok: !output.is_error,
      output: screened.content,
      ...(output.is_error ? { code: 'TOOL_ERROR' } : {}),
      ...(executed ? {} : { replayed: true }),
    };
  }

  /** Runs the tool under its timeout and the step's signal. */
  async #execute(
    tool: GuardedTool,
    args: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<ToolOutput> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(this.#ctx.signal.reason);
    this.#ctx.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () =>
        controller.abort(
          new WardenError('TOOL_ERROR', `tool ${tool.name} timed out after ${timeoutMs} ms`, {
            details: { tool: tool.name, timeout_ms: timeoutMs },
          }),
        ),
      timeoutMs,
    );
    try {
      const run = tool.execute(args, {
        signal: controller.signal,
        caller: { pid: this.#step.process.pid },
        secret: () => {
          throw new WardenError(
            'SECRET_MISSING',
            'secrets reach tools only as {secret: NAME} arguments',
          );
        },
        authorize: (action, resource, context) =>
          this.#authorize(tool.name, action, resource, context),
      });
      // A tool that ignores its signal still loses the race at its deadline.
      return await Promise.race([
        run,
        new Promise<never>((_, reject) => {
          if (controller.signal.aborted) reject(abortReason(controller.signal));
          controller.signal.addEventListener(
            'abort',
            () => reject(abortReason(controller.signal)),
            {
              once: true,
            },
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.#ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  /** A capability decided while the call runs (a redirect's URL): only an outright allow passes. */
  async #authorize(
    tool: string,
    action: string,
    resource: string,
    context: Readonly<Record<string, unknown>> = {},
  ): Promise<void> {
    const policy = await this.#policy();
    await policy.ensure();
    const result = policy.decide({ principal: this.#principal, action, resource, context });
    await this.#audit([{ action, resource, result }], { tool, during: true });
    if (result.decision !== 'allow') {
      throw new WardenError(
        'POLICY_DENIED',
        `${action} on ${resource} ${result.decision === 'ask' ? 'needs an approval, which a running call cannot ask for' : 'denied'}: ${result.reasons.join('; ')}`,
        {
          details: {
            action,
            resource,
            reasons: result.reasons,
            policy_version: result.policy_version,
          },
        },
      );
    }
  }

  /**
   * Asks a person (a confirmation interrupt showing the exact call) and waits. Answers the
   * refusal when denied or expired; undefined when approved.
   */
  async #approve(
    tool: string,
    call: Record<string, unknown>,
    reasons: readonly string[],
    version: string,
    key: string,
  ): Promise<ToolCallResult | undefined> {
    const approvals = this.#deps.kernel.approvals;
    const asked = await approvals.request(this.#step, {
      key,
      tool,
      prompt: `allow ${tool} ${summarise(call.args)}?`,
      call,
      reasons,
      policy_version: version,
      ...(this.#deps.approvalTtlMs ? { ttlMs: this.#deps.approvalTtlMs } : {}),
    });
    const settled = await approvals.wait(asked.id, this.#ctx.signal);
    const approved = settled.status === 'resolved' && settled.response?.approved === true;
    if (approved) return undefined;
    const why =
      settled.status === 'expired'
        ? `the approval ${settled.id} expired unanswered (timeout means deny)`
        : settled.status === 'cancelled'
          ? `the approval ${settled.id} was cancelled`
          : `${settled.resolver ?? 'a person'} denied it (${settled.id})`;
    return this.#denied(call, 'APPROVAL_DENIED', [why], version);
  }

  /** Scores an answer as untrusted text; a `block` verdict withholds it from the agent. */
  async #screen(
    call: Record<string, unknown>,
    output: ToolOutput,
    version: string,
  ): Promise<{ content: unknown; injection?: Record<string, unknown> }> {
    const score = this.#deps.scoreInjection;
    if (!score) return { content: output.content };
    const text =
      typeof output.content === 'string' ? output.content : (JSON.stringify(output.content) ?? '');
    const verdict = score(text);
    if (verdict.verdict === 'clean') return { content: output.content };
    const injection = {
      verdict: verdict.verdict,
      score: verdict.score,
      signals: verdict.signals.map((s) => s.code),
    };
    if (verdict.verdict === 'review') {
      await this.#emit('security.decision', {
        kind: 'injection',
        ...injection,
        tool: call.tool,
        call: call.key,
      });
      return { content: output.content, injection };
    }
    const id = await this.#deps.quarantine({
      kind: 'injection',
      principal: this.#principal,
      action: 'tool.output',
      resource: `tool:${String(call.tool)}`,
      reasons: injection.signals,
      context: {
        call,
        output: excerpt(output.content),
        score: verdict.score,
        policy_version: version,
      },
      process_id: this.#step.process.pid,
      session_id: this.#step.process.session_id,
      trace_id: this.#step.process.trace_id,
    });
    await this.#emit('security.decision', {
      kind: 'injection',
      ...injection,
      tool: call.tool,
      call: call.key,
      quarantine_id: id,
    });
    return {
      content: {
        withheld: true,
        message: `the answer of ${String(call.tool)} was withheld: it looks like a prompt injection (score ${verdict.score.toFixed(2)}; quarantine ${id})`,
      },
      injection: { ...injection, quarantine_id: id },
    };
  }

  async #blocked(
    call: Record<string, unknown>,
    error: WardenError,
    version: string,
  ): Promise<ToolCallResult> {
    if (error.code !== 'GUARD_BLOCKED') {
      if (
        error.code === 'QUOTA_EXCEEDED' ||
        error.code === 'LEASE_LOST' ||
        error.code === 'CANCELED'
      )
        throw error;
      return this.#denied(call, error.code, [this.#deps.redact(error.message)], version);
    }
    const details = (error.details ?? {}) as { guard?: string; reasons?: readonly string[] };
    const reasons = details.reasons?.length ? [...details.reasons] : [error.message];
    const guard = details.guard ?? 'guard';
    const resource = `tool:${String(call.tool)}`;
    const id = await this.#deps.quarantine({
      kind: guard,
      principal: this.#principal,
      action: 'tool.call',
      resource,
      reasons,
      context: { call, details: this.#deps.redact(error.details ?? {}), policy_version: version },
      process_id: this.#step.process.pid,
      session_id: this.#step.process.session_id,
      trace_id: this.#step.process.trace_id,
    });
    // The guard's verdict is a decision too: audited with its reasons.
    await this.#audit(
      [
        {
          action: 'tool.call',
          resource,
          result: {
            decision: 'deny',
            decided: 'deny',
            reasons: [`guard ${guard}: ${reasons.join('; ')}`],
            policy_version: version,
            mode: 'enforce',
            cached: false,
          },
        },
      ],
      { ...call, quarantine_id: id },
    );
    return this.#denied(call, 'GUARD_BLOCKED', reasons, version, { guard, quarantine_id: id });
  }

  async #denied(
    call: Record<string, unknown>,
    code: string,
    reasons: readonly string[],
    version: string,
    extra: Readonly<Record<string, unknown>> = {},
  ): Promise<ToolCallResult> {
    const message = `${String(call.tool)} ${code === 'APPROVAL_DENIED' ? 'not approved' : 'refused'}: ${reasons.join('; ')}`;
    await this.#emit('tool.denied', {
      tool: call.tool,
      call: call.key,
      code,
      reasons,
      policy_version: version,
      ...extra,
    });
    return { ok: false, code, output: { code, message, reasons } };
  }

  async #audit(
    decided: ReadonlyArray<{ action: string; resource: string; result: DecisionResult }>,
    call: Record<string, unknown>,
  ): Promise<void> {
    const step = this.#step;
    await this.#deps.audit(
      decided.map((d) => ({
        request: { principal: this.#principal, action: d.action, resource: d.resource },
        result: d.result,
        trace_id: step.process.trace_id,
        context: {
          process_id: step.process.pid,
          session_id: step.process.session_id,
          stage: step.stage.name,
          step: step.step,
          attempt: step.claim.attempt,
          call,
        },
      })),
    );
  }

  #usage(): Record<string, number> {
    const usage = this.#step.process.usage as unknown as Record<string, number>;
    return { tool_calls: usage.tool_calls ?? 0, llm_calls: usage.llm_calls ?? 0 };
  }

  async #emit(
    type: 'tool.called' | 'tool.denied' | 'security.decision',
    data: Record<string, unknown>,
  ): Promise<void> {
    try {
      await this.#deps.kernel.orchestrator.emitStepEvent(this.#step, type, this.#deps.redact(data));
    } catch (error) {
      // The step lost its lease: its result is dropped with it, and so is this record.
      if (!isWardenError(error, 'LEASE_LOST')) throw error;
    }
  }
}

function excerpt(value: unknown): unknown {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null');
  if (text.length <= EVENT_OUTPUT_CHARS) return value;
  return `${text.slice(0, EVENT_OUTPUT_CHARS)}… [${text.length - EVENT_OUTPUT_CHARS} more characters]`;
}

function summarise(args: unknown): string {
  const text = JSON.stringify(args) ?? '';
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

function abortReason(signal: AbortSignal): WardenError {
  const reason: unknown = signal.reason;
  return reason instanceof WardenError
    ? reason
    : new WardenError('CANCELED', 'the tool call was aborted', { cause: reason });
}
