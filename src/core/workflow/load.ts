/**
 * Turns workflow text (YAML or JSON) into a validated {@link Workflow}, or throws
 * `WORKFLOW_INVALID` listing every problem with the file, the path, what was expected and,
 * for parse errors, the line and column. Pure: reading the file is the caller's job.
 *
 * What they return is a {@link LoadedWorkflow} `{ workflow, hash }`, deep-frozen and
 * remembered (in a WeakSet), so `Kernel.startRun` trusts it without validating it again; a
 * workflow object, or a `{ workflow, hash }` built some other way, is validated there
 * ({@link resolveWorkflow}).
 */
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

import { deepFreeze } from '../deep-freeze.ts';
import { WardenError } from '../errors.ts';
import { sha256Hex } from '../hash-chain.ts';
import { canonicalJson } from '../json.ts';
import {
  checkParams,
  describeValue,
  formatIssuePath,
  invalidParams,
  param,
  valueAt,
} from '../params.ts';
import { type Workflow, workflowSchema } from './schema.ts';
import { type ValidateOptions, validateWorkflow, type WorkflowIssue } from './validate.ts';

export interface LoadedWorkflow {
  /** The validated workflow, with defaults applied and durations in ms (frozen). */
  readonly workflow: Workflow;
  /** sha256 of the canonical JSON of the validated workflow. */
  readonly hash: string;
  /**
   * Problems that did not stop the workflow from loading (severity `warning`): unreachable
   * stages when `allowUnreachable` was given. Empty otherwise. Nothing prints them: show them.
   */
  readonly warnings: readonly WorkflowIssue[];
}

/** LoadedWorkflows this module built (frozen, so still valid): trusted without re-validation. */
const built = new WeakSet<LoadedWorkflow>();

const nameSet = param.is<ReadonlySet<string>>(
  "a Set of names (e.g. agents.names() or new Set(['bySize']))",
  (v) => v instanceof Set && [...(v as Set<unknown>)].every((n) => typeof n === 'string'),
);

const validateOptionsSchema = param.options({
  agents: nameSet.optional(),
  routingFunctions: nameSet.optional(),
  allowUnreachable: param.boolean().optional(),
});

const fileNameSchema = param.string('a file name for messages (a string)').optional();

const buildArgs = z.object({
  fileName: fileNameSchema,
  options: validateOptionsSchema.optional(),
});
const parseArgs = buildArgs.extend({
  text: param.is<string>(
    "the workflow's YAML or JSON text as a string (read files with readFileSync(file, 'utf8'))",
    (v) => typeof v === 'string',
  ),
});

export function parseWorkflowText(
  text: string,
  fileName = '<workflow>',
  options: ValidateOptions = {},
): LoadedWorkflow {
  checkParams('parseWorkflowText', parseArgs, { text, fileName, options });
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
  return build(raw, fileName, options);
}

/** Validates an already-parsed object (TypeScript users building workflows in code). */
export function buildWorkflow(
  raw: unknown,
  fileName = '<workflow>',
  options: ValidateOptions = {},
): LoadedWorkflow {
  checkParams('buildWorkflow', buildArgs, { fileName, options });
  return build(raw, fileName, options);
}

function build(raw: unknown, fileName: string, options: ValidateOptions): LoadedWorkflow {
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
  const loaded: LoadedWorkflow = Object.freeze({
    workflow: deepFreeze(parsed.data),
    hash: sha256Hex(canonicalJson(parsed.data)),
    warnings: Object.freeze(warnings),
  });
  built.add(loaded);
  return loaded;
}

/**
 * The workflow a public API was given, as a LoadedWorkflow: one that {@link buildWorkflow} or
 * {@link parseWorkflowText} returned is used as it is (no second validation); a workflow object
 * (`{name, stages, …}`, as written or as validated) is validated now; a `{workflow, hash}` made
 * some other way is validated too, and refused if its hash does not match (runs store their
 * definition under its hash). Anything else is INVALID_PARAMS saying what to pass.
 */
export function resolveWorkflow(
  value: unknown,
  where: string,
  options: ValidateOptions & { readonly fileName?: string } = {},
): LoadedWorkflow {
  if (built.has(value as LoadedWorkflow)) return value as LoadedWorkflow;
  const expected =
    'expected the LoadedWorkflow that buildWorkflow() or parseWorkflowText() returns, or a workflow object with name and stages';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const hint =
      typeof value === 'string'
        ? "; to run a file, load it first: parseWorkflowText(readFileSync(path, 'utf8'), path)"
        : '';
    throw invalidParams(where, [
      { path: 'workflow', message: `${expected} (got ${describeValue(value)})${hint}` },
    ]);
  }
  const fileName = options.fileName ?? '<workflow>';
  const validate = {
    routingFunctions: options.routingFunctions,
    agents: options.agents,
    allowUnreachable: options.allowUnreachable,
  };
  const record = value as Record<string, unknown>;
  if ('name' in record || 'stages' in record) return build(value, fileName, validate);
  if ('workflow' in record && typeof record.hash === 'string') {
    const loaded = build(record.workflow, fileName, validate);
    if (loaded.hash !== record.hash)
      throw invalidParams(where, [
        {
          path: 'workflow.hash',
          message: `does not match workflow.workflow (its hash is ${loaded.hash}): the workflow was changed after it was built, or the pair was made by hand; pass what buildWorkflow() returns unchanged, or just the workflow object`,
        },
      ]);
    return loaded;
  }
  throw invalidParams(where, [
    {
      path: 'workflow',
      message: `${expected} (got ${describeValue(value)})${'workflow' in record ? '; a { workflow, hash } pair needs the string hash buildWorkflow() gave it, or pass the workflow object alone' : ''}`,
    },
  ]);
}

export function formatPath(path: readonly PropertyKey[]): string {
  return formatIssuePath(path) || '(document)';
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
