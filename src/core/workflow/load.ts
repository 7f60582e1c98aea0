/**
 * Turns workflow text (YAML or JSON) into a validated {@link Workflow}, or throws
 * `WORKFLOW_INVALID` listing every problem with the file, the path, what was expected and,
 * for parse errors, the line and column. Pure: reading the file is the caller's job.
 */
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';

import { WardenError } from '../errors.ts';
import { sha256Hex } from '../hash-chain.ts';
import { canonicalJson } from '../json.ts';
import { type Workflow, workflowSchema } from './schema.ts';
import { type ValidateOptions, validateWorkflow, type WorkflowIssue } from './validate.ts';

export interface LoadedWorkflow {
  readonly workflow: Workflow;
  /** sha256 of the canonical JSON of the validated workflow. */
  readonly hash: string;
  /**
   * Problems that did not stop the workflow from loading (severity `warning`): unreachable
   * stages when `allowUnreachable` was given. Empty otherwise. Nothing prints them: show them.
   */
  readonly warnings: readonly WorkflowIssue[];
}

export function parseWorkflowText(
  text: string,
  fileName = '<workflow>',
  options: ValidateOptions = {},
): LoadedWorkflow {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        severity: 'error' as const,
        path: pos ? `line ${pos.line}, column ${pos.col}` : '(document)',
        message: e.message.split('\n')[0] ?? e.message,
      };
    });
    throw workflowInvalid(fileName, issues, 'is not valid YAML');
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  return buildWorkflow(raw, fileName, options);
}

/** Validates an already-parsed object (TypeScript users building workflows in code). */
export function buildWorkflow(
  raw: unknown,
  fileName = '<workflow>',
  options: ValidateOptions = {},
): LoadedWorkflow {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw workflowInvalid(
      fileName,
      [
        {
          severity: 'error',
          path: '(document)',
          message: 'expected a mapping with name and stages',
        },
      ],
      'is not a workflow',
    );
  }
  const parsed = workflowSchema.safeParse(raw);
  if (!parsed.success)
    throw workflowInvalid(
      fileName,
      zodIssues(parsed.error, raw),
      'does not match the workflow schema',
    );
  const issues = validateWorkflow(parsed.data, options);
  const errors = issues.filter((i) => i.severity === 'error');
  const warnings = issues.filter((i) => i.severity === 'warning');
  if (errors.length > 0)
    throw workflowInvalid(fileName, errors, 'is not a valid workflow', warnings);
  return { workflow: parsed.data, hash: sha256Hex(canonicalJson(parsed.data)), warnings };
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(document)' : out;
}

function zodIssues(error: z.ZodError, raw: unknown): WorkflowIssue[] {
  return error.issues.map((issue) => {
    const got = valueAt(raw, issue.path);
    const shown = got === undefined ? '' : ` (got ${truncate(JSON.stringify(got))})`;
    return {
      severity: 'error' as const,
      path: formatPath(issue.path),
      message: `${issue.message}${issue.code === 'invalid_type' ? '' : shown}`,
    };
  });
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

function truncate(text: string | undefined, max = 60): string {
  if (text === undefined) return 'undefined';
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * WORKFLOW_INVALID naming every error in its message; `details.issues` lists the errors as
 * `{path, message}`, and `details.warnings` (only when there are some) the warnings.
 */
function workflowInvalid(
  fileName: string,
  issues: readonly WorkflowIssue[],
  what: string,
  warnings: readonly WorkflowIssue[] = [],
): WardenError {
  const lines = issues.map((i) => `  ${fileName}: ${i.path}: ${i.message}`);
  const plain = (list: readonly WorkflowIssue[]) =>
    list.map((i) => ({ path: i.path, message: i.message }));
  return new WardenError(
    'WORKFLOW_INVALID',
    `${fileName} ${what}:\n${lines.join('\n')}\nFix the file and run the command again; nothing was changed.`,
    {
      details: {
        file: fileName,
        issues: plain(issues),
        ...(warnings.length > 0 ? { warnings: plain(warnings) } : {}),
      },
    },
  );
}
