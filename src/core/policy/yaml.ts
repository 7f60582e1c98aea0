/**
 * Compiles `policy.yaml` (docs/policy.md) to Cedar. Pure: the caller reads the file
 * and resolves real paths. Every generated policy carries an `@id` that reads as the YAML key
 * it came from (`yaml:agents.researcher.tools`), so a decision's reasons point at the line
 * an operator has to change; policies that only allow with a person's approval also carry
 * `@decision("ask")`. Errors are POLICY_INVALID naming the file, the line, the key path and
 * what was expected — never a silently ignored key.
 */
import { type Document, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';

import { WardenError } from '../errors.ts';
import { describeValue, formatIssuePath, valueAt } from '../params.ts';
import { cedarString } from './cedar-text.ts';
import { COMMAND_RISKS, isPolicyAction, type PolicyAction } from './model.ts';
import type { PolicyMode, TrustLevel } from './types.ts';
import {
  commandCondition,
  EntryError,
  kvCondition,
  methodAction,
  nameCondition,
  principalPattern,
  rootCondition,
  secretName,
  toolCondition,
  urlCondition,
} from './yaml-rules.ts';
import { BUDGET_CAPS, type BudgetCap, policyFileSchema, type PolicyRule } from './yaml-schema.ts';

export interface CompiledYamlPolicy {
  /** Cedar policies, each with an `@id` annotation. */
  readonly cedar: string;
  /** Principal pattern (`agent:wf/stage`, `agent:wf/*`, `agent:*`, `skill:x`, `skill:*`) → level. */
  readonly trust: Record<string, TrustLevel>;
  /** `enforce` unless the file says `mode: audit`. */
  readonly mode: PolicyMode;
  /** Whether the file set `mode` itself. */
  readonly modeSet: boolean;
  /** Policy id → the line of the YAML key it was compiled from. */
  readonly lines: Record<string, number>;
  readonly warnings: string[];
}

export interface CompileYamlOptions {
  /** The policy file's directory, for relative `files` roots (a real path: the caller's job). */
  readonly baseDir?: string;
}

/** One problem in a policy file. */
export interface PolicyIssue {
  readonly path: string;
  readonly line?: number;
  readonly message: string;
}

/** Actions an `ask` entry may name (the rule sections for them then need approval). */
const ASKABLE = new Set<PolicyAction>([
  'tool.call',
  'http.request',
  'fs.read',
  'fs.list',
  'fs.write',
  'shell.exec',
  'kv.get',
  'kv.set',
  'task.submit',
  'run.spawn',
]);

type Path = (string | number)[];

/** Builds the Cedar text; collects issues instead of stopping at the first. */
class Compiler {
  readonly policies: string[] = [];
  readonly issues: { path: Path; message: string }[] = [];
  readonly trust: Record<string, TrustLevel> = {};
  readonly warnings: string[] = [];
  /** Principal patterns already given a rule (`wf` and `wf/*` are the same). */
  private readonly seen = new Set<string>();

  /** Line of each id made so far, and of each policy emitted. */
  readonly #idLines = new Map<string, number | undefined>();
  readonly lines: Record<string, number> = {};
  private readonly prefix: string;
  private readonly baseDir: string | undefined;
  private readonly lineOf: (path: Path) => number | undefined;

  constructor(
    prefix: string,
    baseDir: string | undefined,
    lineOf: (path: Path) => number | undefined,
  ) {
    this.prefix = prefix;
    this.baseDir = baseDir;
    this.lineOf = lineOf;
  }

  id(path: Path): string {
    let out = `${this.prefix}:`;
    for (const part of path) {
      if (typeof part === 'number') out += `[${part}]`;
      else if (/^[\w/*-]+$/.test(part)) out += out.endsWith(':') ? part : `.${part}`;
      else out += `[${JSON.stringify(part)}]`;
    }
    this.#idLines.set(out, this.lineOf(path));
    return out;
  }

  /** Runs `fn` on each entry; an EntryError becomes an issue at `path[i]`. */
  each(path: Path, entries: readonly string[] | undefined, fn: (e: string) => string): string[] {
    const out: string[] = [];
    (entries ?? []).forEach((entry, i) => {
      try {
        out.push(fn(entry));
      } catch (e) {
        if (!(e instanceof EntryError)) throw e;
        const got = e.message.includes('(got ') ? '' : ` (got ${describeValue(entry)})`;
        this.issues.push({ path: [...path, i], message: `${e.message}${got}` });
      }
    });
    return out;
  }

  emit(
    id: string,
    effect: 'permit' | 'forbid',
    scope: [string, string, string],
    conditions: readonly string[],
    options: { ask?: boolean; unless?: boolean } = {},
  ): void {
    const line = this.#idLines.get(id) ?? this.#idLines.get(id.replace(/ \(ask\)$/, ''));
    if (line !== undefined) this.lines[id] = line;
    const head = `@id(${cedarString(id)})${options.ask ? '\n@decision("ask")' : ''}`;
    const body = `${effect} (\n  ${scope.join(',\n  ')}\n)`;
    if (conditions.length === 0 || conditions.includes('true')) {
      this.policies.push(`${head}\n${body};`);
      return;
    }
    const kind = options.unless ? 'unless' : 'when';
    this.policies.push(`${head}\n${body} ${kind} {\n  ${conditions.join(' ||\n  ')}\n};`);
  }

  /** Allow `actions` on `resourceScope` when any condition holds, split by `ask`. */
  allow(
    id: string,
    principal: string,
    actions: readonly PolicyAction[],
    resourceScope: string,
    conditions: readonly string[],
    ask: ReadonlySet<string>,
  ): void {
    if (conditions.length === 0) return;
    const plain = actions.filter((a) => !ask.has(a));
    const asked = actions.filter((a) => ask.has(a));
    const scope = (list: PolicyAction[]) =>
      list.length === 1
        ? `action == Action::${cedarString(list[0]!)}`
        : `action in [${list.map((a) => `Action::${cedarString(a)}`).join(', ')}]`;
    if (plain.length > 0)
      this.emit(id, 'permit', [principal, scope(plain), resourceScope], conditions);
    if (asked.length > 0)
      this.emit(`${id} (ask)`, 'permit', [principal, scope(asked), resourceScope], conditions, {
        ask: true,
      });
  }

  rule(section: 'agents' | 'skills', key: string, rule: PolicyRule): void {
    const path: Path = [section, key];
    let pattern;
    try {
      pattern = principalPattern(key, section === 'skills');
    } catch (e) {
      if (!(e instanceof EntryError)) throw e;
      this.issues.push({ path, message: `${e.message} (got ${describeValue(key)})` });
      return;
    }
    if (this.seen.has(pattern.trustKey)) {
      this.issues.push({
        path,
        message: `the same principals as another key (${pattern.trustKey}): merge the two rules`,
      });
      return;
    }
    this.seen.add(pattern.trustKey);
    if (rule.trust !== undefined) this.trust[pattern.trustKey] = rule.trust;
    const p = pattern.scope;
    const at = (...rest: Path) => [...path, ...rest];
    const askActions = new Set<string>();
    const askTools = this.each(at('ask'), rule.ask, (entry) => {
      if (isPolicyAction(entry) && ASKABLE.has(entry)) {
        askActions.add(entry);
        return '';
      }
      return toolCondition(entry);
    }).filter((c) => c !== '');

    const tools = this.each(at('tools'), rule.tools, toolCondition);
    this.allow(this.id(at('tools')), p, ['tool.call'], 'resource is Tool', tools, askActions);
    if (askTools.length > 0)
      this.emit(
        this.id(at('ask')),
        'permit',
        [p, 'action == Action::"tool.call"', 'resource is Tool'],
        askTools,
        { ask: true },
      );
    const urls = this.each(at('urls'), rule.urls, urlCondition);
    this.allow(this.id(at('urls')), p, ['http.request'], 'resource is Url', urls, askActions);
    const root = (e: string) => rootCondition(e, this.baseDir);
    const reads = this.each(at('files', 'read'), rule.files?.read, root);
    this.allow(
      this.id(at('files', 'read')),
      p,
      ['fs.read', 'fs.list'],
      'resource is Path',
      reads,
      askActions,
    );
    const writes = this.each(at('files', 'write'), rule.files?.write, root);
    this.allow(
      this.id(at('files', 'write')),
      p,
      ['fs.write'],
      'resource is Path',
      writes,
      askActions,
    );
    const commands = this.each(at('commands'), rule.commands, commandCondition);
    this.allow(
      this.id(at('commands')),
      p,
      ['shell.exec'],
      'resource is Command',
      commands,
      askActions,
    );
    const kvReads = this.each(at('kv', 'read'), rule.kv?.read, kvCondition);
    this.allow(this.id(at('kv', 'read')), p, ['kv.get'], 'resource is Kv', kvReads, askActions);
    const kvWrites = this.each(at('kv', 'write'), rule.kv?.write, kvCondition);
    this.allow(this.id(at('kv', 'write')), p, ['kv.set'], 'resource is Kv', kvWrites, askActions);
    const lanes = this.each(at('lanes'), rule.lanes, (e) => nameCondition(e, 'Lane'));
    this.allow(this.id(at('lanes')), p, ['task.submit'], 'resource is Lane', lanes, askActions);
    const flows = this.each(at('workflows'), rule.workflows, (e) => nameCondition(e, 'Workflow'));
    this.allow(
      this.id(at('workflows')),
      p,
      ['run.spawn'],
      'resource is Workflow',
      flows,
      askActions,
    );

    if (rule.max_command_risk !== undefined || commands.length > 0) {
      const max = rule.max_command_risk ?? 'medium';
      const allowed = COMMAND_RISKS.slice(0, COMMAND_RISKS.indexOf(max) + 1);
      this.emit(
        this.id(at('max_command_risk')),
        'forbid',
        [p, 'action == Action::"shell.exec"', 'resource'],
        [
          `context has risk && [${allowed.map((r) => cedarString(r)).join(', ')}].contains(context.risk)`,
        ],
        { unless: true },
      );
    }
    for (const [cap, limit] of Object.entries(rule.budget ?? {}) as [BudgetCap, number][]) {
      const { action, counter } = BUDGET_CAPS[cap];
      this.emit(
        this.id(at('budget', cap)),
        'forbid',
        [p, `action == Action::${cedarString(action)}`, 'resource'],
        [
          `context has usage && context.usage has ${counter} && context.usage.${counter} >= ${limit}`,
        ],
      );
    }
    const allows =
      tools.length + askTools.length + urls.length + reads.length + writes.length + commands.length;
    const restricts = rule.trust ?? rule.budget ?? rule.max_command_risk;
    if (allows + kvReads.length + kvWrites.length + lanes.length + flows.length === 0 && !restricts)
      this.warnings.push(
        `${section}.${key} allows nothing (no tools, urls, files, commands, kv, lanes or workflows)`,
      );
  }

  token(key: string, allow: readonly string[] | undefined, deny: readonly string[] | undefined) {
    const path: Path = ['tokens', key];
    if (key !== '*' && (key === '' || /[\u0000-\u001f\u007f*]/.test(key))) {
      this.issues.push({ path, message: `expected a token id or "*" (got ${describeValue(key)})` });
      return;
    }
    const p = key === '*' ? 'principal is Token' : `principal == Token::${cedarString(key)}`;
    const methods = (list: readonly string[] | undefined, name: string) =>
      this.each([...path, name], list, methodAction);
    const allowed = methods(allow, 'allow_methods');
    if (allowed.length > 0)
      this.emit(
        this.id([...path, 'allow_methods']),
        'permit',
        [p, `action in [${allowed.join(', ')}]`, 'resource'],
        [],
      );
    const denied = methods(deny, 'deny_methods');
    if (denied.length > 0)
      this.emit(
        this.id([...path, 'deny_methods']),
        'forbid',
        [p, `action in [${denied.join(', ')}]`, 'resource'],
        [],
      );
  }

  secret(key: string, agents: readonly string[]): void {
    let name: string;
    try {
      name = secretName(key);
    } catch (e) {
      if (!(e instanceof EntryError)) throw e;
      this.issues.push({
        path: ['secrets', key],
        message: `${e.message} (got ${describeValue(key)})`,
      });
      return;
    }
    const scopes = this.each(['secrets', key, 'agents'], agents, (e) => principalPattern(e).scope);
    scopes.forEach((scope, i) =>
      this.emit(
        this.id(['secrets', key, 'agents', i]),
        'permit',
        [scope, 'action == Action::"secret.use"', `resource == Secret::${cedarString(name)}`],
        [],
      ),
    );
  }
}

/**
 * Compiles one YAML policy file. `file` names it in ids and messages: policies from
 * `policy.yaml` get ids `yaml:…`, those of any other file `<file>:…`. Throws POLICY_INVALID
 * listing every problem (file, line, key path, what was expected).
 */
export function compileYamlPolicy(
  text: string,
  file = 'policy.yaml',
  options: CompileYamlOptions = {},
): CompiledYamlPolicy {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    throw policyInvalid(
      file,
      doc.errors.map((e) => ({
        path: '(document)',
        line: lineCounter.linePos(e.pos[0])?.line,
        message: e.message.split('\n')[0] ?? e.message,
      })),
      'is not valid YAML',
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const parsed = policyFileSchema.safeParse(raw);
  if (!parsed.success)
    throw policyInvalid(
      file,
      zodIssues(parsed.error, raw, doc, lineCounter),
      'does not match the policy format',
    );
  const policy = parsed.data;
  const compiler = new Compiler(file === 'policy.yaml' ? 'yaml' : file, options.baseDir, (path) =>
    lineOf(doc, lineCounter, path),
  );
  for (const [key, rule] of Object.entries(policy.agents ?? {})) compiler.rule('agents', key, rule);
  for (const [key, rule] of Object.entries(policy.skills ?? {})) compiler.rule('skills', key, rule);
  for (const [key, rule] of Object.entries(policy.tokens ?? {}))
    compiler.token(key, rule.allow_methods, rule.deny_methods);
  for (const [key, rule] of Object.entries(policy.secrets ?? {})) compiler.secret(key, rule.agents);
  if (compiler.issues.length > 0) {
    const issues = compiler.issues.map((i) => ({
      path: formatIssuePath(i.path),
      line: lineOf(doc, lineCounter, i.path),
      message: i.message,
    }));
    throw policyInvalid(file, issues, 'is not a valid policy');
  }
  const mode = policy.mode ?? 'enforce';
  if (mode === 'audit')
    compiler.warnings.push(`${file} sets mode: audit: every decision is allowed and only audited`);
  return {
    cedar: compiler.policies.join('\n\n') + (compiler.policies.length > 0 ? '\n' : ''),
    trust: compiler.trust,
    mode,
    modeSet: policy.mode !== undefined,
    lines: compiler.lines,
    warnings: compiler.warnings,
  };
}

function lineOf(
  doc: Document,
  counter: LineCounter,
  path: readonly PropertyKey[],
): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as
      { range?: [number, number, number] } | undefined;
    if (node?.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

function zodIssues(
  error: z.ZodError,
  raw: unknown,
  doc: Document,
  counter: LineCounter,
): PolicyIssue[] {
  return error.issues.map((issue) => {
    const got = valueAt(raw, issue.path);
    const shown =
      issue.code === 'unrecognized_keys' || issue.message.includes('(got ')
        ? ''
        : ` (got ${describeValue(got)})`;
    return {
      path: formatIssuePath(issue.path) || '(document)',
      line: lineOf(doc, counter, issue.path),
      message: `${issue.message}${shown}`,
    };
  });
}

/** POLICY_INVALID listing every issue; `details.issues` holds them as `{path, line, message}`. */
export function policyInvalid(
  file: string,
  issues: readonly PolicyIssue[],
  what: string,
): WardenError {
  const lines = issues.map(
    (i) => `  ${file}${i.line === undefined ? '' : `:${i.line}`}: ${i.path}: ${i.message}`,
  );
  return new WardenError(
    'POLICY_INVALID',
    `${file} ${what}:\n${lines.join('\n')}\nFix the file and reload; the previous policy stays active.`,
    { details: { file, issues: issues.map((i) => ({ ...i })) } },
  );
}
