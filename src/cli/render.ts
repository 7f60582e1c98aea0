/** Human-readable rendering of run progress and summaries. */
import type { Quota, Usage } from '../core/index.ts';
import type { EventRecord, ProcessRecord } from '../store/index.ts';
import { formatElapsed, style } from './output.ts';

export function budgetLine(usage: Usage, quota: Quota): string {
  return [
    `llm ${usage.llm_calls}/${quota.max_llm_calls}`,
    `hops ${usage.agent_hops}/${quota.max_agent_hops}`,
    `iterations ${usage.iterations}/${quota.max_iterations}`,
    `tokens in ${usage.input_tokens}/${quota.max_input_tokens} out ${usage.output_tokens}/${quota.max_output_tokens}`,
  ].join(' · ');
}

/**
 * Text from a run (an interrupt prompt with substituted values, an answer) made safe to print
 * on a terminal: every control character except newline and tab — ESC and CSI, which start
 * every ANSI escape sequence, carriage return, backspace, DEL — and the Unicode bidirectional
 * overrides are shown as visible escapes (`\x1b`, `\u202e`) instead of being sent to the
 * terminal, so a value cannot move the cursor, recolour, clear or re-order what a person is
 * asked to approve.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

// C0 controls but \t and \n, DEL, C1 controls, and the bidi marks, embeddings, overrides and isolates.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** An interrupt prompt for one line of output: made {@link terminalSafe}, line breaks folded. */
export function promptLine(prompt: string, max?: number): string {
  const flat = terminalSafe(prompt).replace(/\s+/g, ' ').trim();
  return max !== undefined && flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function short(value: unknown, max = 100): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return promptLine(text ?? '', max);
}

/** One line per interesting event, or null for events shown another way (deltas) or not at all. */
export function renderEvent(event: EventRecord): string | null {
  const d = (event.data ?? {}) as Record<string, unknown>;
  switch (event.type) {
    case 'stage.started':
      return `${style.cyan('▸')} ${style.bold(String(d.stage))} ${style.dim(`step ${String(d.step)}${Number(d.attempt) > 1 ? `, attempt ${String(d.attempt)}` : ''}`)}`;
    case 'model.called': {
      const u = d.usage as Usage | undefined;
      return style.dim(
        `  model ${String(d.model)} · ${String(d.input_tokens)} in / ${String(d.output_tokens)} out · ${formatElapsed(Number(d.duration_ms))}${u ? ` · llm calls so far ${u.llm_calls}` : ''}`,
      );
    }
    case 'tool.called': {
      const e = d.error as { code?: string; message?: string } | undefined;
      const mark = d.ok ? style.green('  ⚙') : style.yellow('  ⚙');
      const what = e ? `[${e.code ?? '?'}] ${terminalSafe(e.message ?? '')}` : short(d.output);
      return `${mark} ${String(d.tool)}${d.replayed ? ' (from the journal)' : ''} ${style.dim(`${what} · ${formatElapsed(Number(d.duration_ms))}`)}`;
    }
    case 'tool.denied': {
      const reasons = Array.isArray(d.reasons) ? d.reasons.map(String).join('; ') : '';
      return `${style.red('  ⊘')} ${String(d.tool)} ${style.dim(`[${String(d.code)}] ${terminalSafe(reasons)}`)}`;
    }
    case 'security.decision':
      return style.yellow(
        `  ! security: ${String(d.kind)} ${terminalSafe(JSON.stringify(d.signals ?? d.reasons ?? ''))}`,
      );
    case 'stage.completed':
      return `${style.green('✓')} ${String(d.stage)} ${style.dim(short(d.output))}`;
    case 'stage.failed': {
      const e = d.error as { code?: string; message?: string } | undefined;
      return `${style.red('✗')} ${String(d.stage)} ${style.dim(`[${e?.code ?? '?'}] ${terminalSafe(e?.message ?? '')}${d.will_retry ? ' — will retry' : ''}`)}`;
    }
    case 'route.taken':
      return style.dim(`  → ${String(d.to)} (${String(d.via)})`);
    case 'stage.forked':
      return style.dim(`  ⑂ ${String(d.stage)} step ${String(d.step)}`);
    case 'stage.joined':
      return style.dim(
        `  ⋈ ${String(d.stage)} (${String(d.join_strategy)} of ${short(d.waited_for)})`,
      );
    case 'stage.cancelled':
      return style.yellow(
        `  ⊘ ${String(d.stage)} cancelled: ${d.reason === 'join' ? `${String(d.winner)} won the any join of ${String(d.join)}` : 'the run ended'}`,
      );
    case 'interrupt.raised':
      return `${style.yellow('?')} ${String(d.kind)}: ${promptLine(String(d.prompt))} ${style.dim(String(d.id))}`;
    case 'interrupt.resolved':
      return `${style.green('✓')} ${String(d.kind)} answered ${style.dim(short(d.response))}`;
    case 'interrupt.expired':
      return `${style.yellow('!')} ${String(d.kind)} interrupt expired`;
    case 'budget.exceeded':
      return `${style.yellow('!')} budget exhausted: ${String(d.reason)}`;
    case 'budget.soft_timeout':
      return `${style.yellow('!')} soft time limit passed (${formatElapsed(Number(d.elapsed_ms))})`;
    case 'budget.granted':
      return `${style.green('+')} budget granted`;
    default:
      return null;
  }
}

export function summaryLine(p: ProcessRecord): string {
  const elapsed = (p.completed_at ?? p.updated_at) - (p.started_at ?? p.created_at);
  const head =
    p.state === 'terminated'
      ? p.terminal_reason === 'completed'
        ? style.green(`■ completed`)
        : style.red(`■ ${p.terminal_reason ?? 'terminated'}`)
      : style.yellow(`■ ${p.state}`);
  return `${head} ${style.dim(p.terminal_message && p.terminal_reason !== 'completed' ? `— ${p.terminal_message}` : '')}\n  ${budgetLine(p.usage, p.quota)} · ${formatElapsed(elapsed)}`;
}

/** The JSON shape of a run for `--json` output. */
export function runJson(p: ProcessRecord, pendingInterrupts: unknown[] = []) {
  return {
    pid: p.pid,
    workflow: p.workflow_name,
    session_id: p.session_id,
    state: p.state,
    current_stage: p.current_stage,
    terminal_reason: p.terminal_reason,
    terminal_message: p.terminal_message,
    usage: p.usage,
    quota: p.quota,
    outputs: p.envelope.outputs,
    pending_interrupts: pendingInterrupts,
    created_at: p.created_at,
    completed_at: p.completed_at,
  };
}

/** `1 session`, `2 sessions`: a count with its noun agreeing. */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
