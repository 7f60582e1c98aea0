/**
 * `warden validate <workflow...>`: loads and checks workflow files exactly as `warden run` would,
 * without opening a database or reading the Warden home (it works where Warden was never
 * initialised, e.g. in CI).
 */
import { coerceError, type ErrorCode, type WorkflowIssue } from '../../core/index.ts';
import { EXIT, exitCodeFor } from '../exit-codes.ts';
import type { GlobalOptions } from '../global-options.ts';
import { printJson, printLine, style } from '../output.ts';
import { readWorkflowFile } from './run.ts';

export interface ValidateCommandOptions extends GlobalOptions {
  readonly allowUnreachable?: boolean;
}

/** One file's result, as printed by `--json`. */
export interface FileReport {
  readonly file: string;
  readonly valid: boolean;
  /** Why the file is not valid: `WORKFLOW_INVALID`, `NOT_FOUND` (no such file), … */
  readonly code: ErrorCode | null;
  /** First line of the error, e.g. `flow.yaml is not a valid workflow:`. */
  readonly summary: string | null;
  readonly workflow: string | null;
  readonly stages: number | null;
  readonly hash: string | null;
  readonly issues: readonly WorkflowIssue[];
}

export function validateFile(file: string, allowUnreachable: boolean): FileReport {
  try {
    const loaded = readWorkflowFile(file, { allowUnreachable });
    return {
      file,
      valid: true,
      code: null,
      summary: null,
      workflow: loaded.workflow.name,
      stages: loaded.workflow.stages.length,
      hash: loaded.hash,
      issues: loaded.warnings,
    };
  } catch (error) {
    const e = coerceError(error);
    const details = (e.details ?? {}) as {
      issues?: ReadonlyArray<{ path: string; message: string }>;
      warnings?: ReadonlyArray<{ path: string; message: string }>;
    };
    const issues: WorkflowIssue[] =
      e.code === 'WORKFLOW_INVALID'
        ? [
            ...(details.issues ?? []).map((i) => ({ severity: 'error' as const, ...i })),
            ...(details.warnings ?? []).map((i) => ({ severity: 'warning' as const, ...i })),
          ]
        : [{ severity: 'error', path: '(file)', message: e.message }];
    return {
      file,
      valid: false,
      code: e.code,
      summary: e.code === 'WORKFLOW_INVALID' ? (e.message.split('\n')[0] ?? null) : e.message,
      workflow: null,
      stages: null,
      hash: null,
      issues,
    };
  }
}

export function validateCommand(
  files: readonly string[],
  options: ValidateCommandOptions,
): Promise<number> {
  const reports = files.map((file) => validateFile(file, options.allowUnreachable ?? false));
  if (options.json) printJson({ valid: reports.every((r) => r.valid), files: reports });
  else for (const report of reports) printReport(report);
  // A bad workflow (exit 2) outranks a missing file (exit 5).
  const codes = reports.flatMap((r) => (r.code === null ? [] : [exitCodeFor(r.code)]));
  return Promise.resolve(codes.includes(EXIT.USAGE) ? EXIT.USAGE : (codes[0] ?? EXIT.OK));
}

function printReport(r: FileReport): void {
  const line = (i: WorkflowIssue) =>
    i.severity === 'warning'
      ? `  ${style.yellow('warning')} ${r.file}: ${i.path}: ${i.message}`
      : `  ${r.file}: ${i.path}: ${i.message}`;
  if (r.valid) {
    printLine(
      `${style.green('✓')} ${r.file}: workflow '${r.workflow ?? ''}', ${r.stages ?? 0} stage${r.stages === 1 ? '' : 's'}`,
    );
  } else if (r.code === 'WORKFLOW_INVALID') {
    printLine(`${style.red('✗')} ${r.summary ?? r.file}`);
  } else {
    printLine(`${style.red('✗')} ${r.file}: ${style.dim(`[${r.code ?? ''}]`)} ${r.summary ?? ''}`);
    return;
  }
  for (const issue of r.issues) printLine(line(issue));
}
