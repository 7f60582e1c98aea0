/**
 * Hook commands go through Warden's policy like an agent's `shell.exec` (reference A.8 #1): the
 * command-risk guard, then the policy decision point for `tool.call` on `tool:shell.exec` and
 * `shell.exec` on `command:<argv, shell-quoted>`, as principal `agent:plan/<task id>`; every
 * decision is audited. Default deny: with no policy allowing it, a hook command does not run
 * and its record says why.
 */
import type { DecisionResult } from '../core/index.ts';
import { shellQuote } from '../core/shell-quote.ts';
import { analyzeCommand } from '../security/guards/command-risk.ts';
import type { Security } from '../security/runtime.ts';

export interface GateVerdict {
  readonly allowed: boolean;
  /** Why not, for the command's `error` field. */
  readonly reason?: string;
}

export interface GateScope {
  readonly taskId: string;
  readonly sessionId: string;
  readonly traceId: string;
  readonly workspace: string;
}

/** The command line the policy sees: argv as shell words (so `git status` stays a simple prefix). */
export function commandLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

export class CommandGate {
  readonly #security: Security;

  constructor(security: Security) {
    this.#security = security;
  }

  async check(scope: GateScope, argv: readonly string[], cwd: string): Promise<GateVerdict> {
    const principal = `agent:plan/${scope.taskId}`;
    const command = commandLine(argv);
    const resource = `command:${command}`;
    const audit = (action: string, res: string, result: DecisionResult) => ({
      request: { principal, action, resource: res },
      result,
      trace_id: scope.traceId,
      context: { session_id: scope.sessionId, task: scope.taskId, cwd },
    });
    const risk = await analyzeCommand(command, { workspace: scope.workspace });
    const policy = await this.#security.policy.pin();
    await policy.ensure();
    if (risk.level === 'critical') {
      const reasons = risk.reasons.map((r) => `${r.code}: ${r.message}`);
      const result: DecisionResult = {
        decision: 'deny',
        decided: 'deny',
        reasons: [`command guard: risk is critical (${risk.score})`, ...reasons],
        policy_version: policy.version,
        mode: 'enforce',
        cached: false,
      };
      await this.#security.audit.record([audit('shell.exec', resource, result)]);
      await this.#security.quarantine({
        kind: 'command',
        principal,
        action: 'shell.exec',
        resource,
        reasons,
        context: { cwd, score: risk.score },
        process_id: null,
        session_id: scope.sessionId,
        trace_id: scope.traceId,
      });
      return { allowed: false, reason: `blocked by the command guard: ${reasons.join('; ')}` };
    }
    const tool = policy.decide({ principal, action: 'tool.call', resource: 'tool:shell.exec' });
    const exec = policy.decide({
      principal,
      action: 'shell.exec',
      resource,
      context: {
        risk: risk.level,
        risk_score: risk.score,
        risk_reasons: risk.reasons.map((r) => r.code),
        simple: risk.simple,
        cwd,
      },
    });
    await this.#security.audit.record([
      audit('tool.call', 'tool:shell.exec', tool),
      audit('shell.exec', resource, exec),
    ]);
    for (const result of [tool, exec]) {
      if (result.decision === 'deny')
        return {
          allowed: false,
          reason: `denied by policy ${policy.version.slice(0, 12)}: ${result.reasons.join('; ') || 'no rule allows it (default deny)'}`,
        };
      if (result.decision === 'ask')
        return {
          allowed: false,
          reason: `the policy asks for approval, and warden exec runs unattended: allow the command for agent plan/${scope.taskId} (see docs/plans.md)`,
        };
    }
    return { allowed: true };
  }
}
