/**
 * A session's transcript, read from its runs (the event log's projection): each run of the
 * session is a user message (its input's `message`) and, once it ended, the assistant's reply
 * (the last stage output's text). `sessions.reset` and `sessions.compact` move the entry's
 * `historyFrom` cut instead of deleting anything, so the log stays whole and verifiable.
 */
import type { Kernel } from '../../kernel/index.ts';
import type { ProcessRecord } from '../../store/index.ts';
import { replyText, runMeta } from './event-bridge.ts';
import type { GatewaySession } from './session-records.ts';

export interface TranscriptMessage {
  readonly role: 'user' | 'assistant';
  readonly text: string;
  readonly ts: number;
  readonly runId: string;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly model?: string;
  readonly status?: 'running' | 'done' | 'failed' | 'killed';
}

/** How many runs a transcript reads at most (the newest). */
const MAX_RUNS = 5_000;

/** The session's runs, oldest first; since the last reset/compaction unless `all`. */
export async function sessionRuns(
  kernel: Kernel,
  session: GatewaySession,
  all = false,
): Promise<ProcessRecord[]> {
  const runs = await kernel.store.listProcesses({ sessionId: session.session.id, limit: MAX_RUNS });
  const from = all ? 0 : historyFrom(session);
  return runs
    .filter((r) => r.created_at >= from)
    .sort((a, b) => a.created_at - b.created_at || a.pid.localeCompare(b.pid));
}

export function historyFrom(session: GatewaySession): number {
  const cut = (session.session.settings.openclaw_history_from as number | undefined) ?? 0;
  return typeof cut === 'number' && Number.isFinite(cut) ? cut : 0;
}

function userText(run: ProcessRecord): string {
  const input = run.envelope.input;
  if (
    input !== null &&
    typeof input === 'object' &&
    typeof (input as { message?: unknown }).message === 'string'
  )
    return (input as { message: string }).message;
  return input === undefined || input === null ? '' : JSON.stringify(input);
}

export function runStatus(run: ProcessRecord): 'running' | 'done' | 'failed' | 'killed' {
  if (run.state !== 'terminated' && run.state !== 'zombie') return 'running';
  if (run.terminal_reason === 'completed') return 'done';
  return run.terminal_reason === 'user_cancelled' ? 'killed' : 'failed';
}

export function modelOf(run: ProcessRecord): string {
  const input = run.envelope.input as { model?: unknown } | null;
  if (input && typeof input === 'object' && typeof input.model === 'string') return input.model;
  const outputs = Object.values(run.envelope.outputs);
  const last = outputs.at(-1) as { model?: unknown } | undefined;
  return last && typeof last === 'object' && typeof last.model === 'string'
    ? last.model
    : 'scripted';
}

export function transcriptOf(runs: readonly ProcessRecord[]): TranscriptMessage[] {
  const out: TranscriptMessage[] = [];
  for (const run of runs) {
    const { runId } = runMeta(run);
    out.push({ role: 'user', text: userText(run), ts: run.created_at, runId });
    const status = runStatus(run);
    if (status === 'running') continue;
    const text =
      status === 'done' ? replyText(run) : (run.terminal_message ?? run.terminal_reason ?? '');
    out.push({
      role: 'assistant',
      text,
      ts: run.completed_at ?? run.updated_at,
      runId,
      inputTokens: run.usage.input_tokens,
      outputTokens: run.usage.output_tokens,
      model: modelOf(run),
      status,
    });
  }
  return out;
}

/** §4.16 display form: rows that are exactly `NO_REPLY` are omitted, long ones cut. */
export function chatMessages(
  messages: readonly TranscriptMessage[],
  limit: number,
  maxChars: number | undefined,
): Array<Record<string, unknown>> {
  // The limit counts rows shown: omitted NO_REPLY rows must not shorten the page.
  return messages
    .filter((m) => m.text.trim() !== 'NO_REPLY')
    .slice(-limit)
    .map((m) => ({
      role: m.role,
      content: [
        {
          type: 'text',
          text:
            maxChars !== undefined && m.text.length > maxChars
              ? `${m.text.slice(0, maxChars)}… [truncated]`
              : m.text,
        },
      ],
      timestamp: m.ts,
      runId: m.runId,
      ...(m.status ? { status: m.status } : {}),
    }));
}
