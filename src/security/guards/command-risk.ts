/**
 * Command risk (DESIGN.md §8, Guards): scores a shell command before anything runs it.
 *
 * 1. mvdan/sh (the `sh-syntax` WASM build, bash dialect) parses the text. If it refuses, the
 *    command is `critical` with reason `unparseable`: a shell might still run part of it.
 * 2. shell-parse.ts builds the full AST (sh-syntax 0.7 returns only the top level). Its
 *    top-level statements, background flags and redirections must match mvdan/sh's; a mismatch
 *    is `parser_mismatch` (80), so a construct the structural parser misreads fails closed.
 * 3. command-walk.ts lists every simple command (pipelines, lists, subshells, groups, functions,
 *    `if`/`for`/`case` bodies, `$(…)`, backticks, `<(…)`, here-documents), and
 *    command-rules.ts scores them. Text run by a command (`sh -c`, `eval`, `su -c`, `watch`,
 *    `env -S`, a here-document fed to a shell, shell strings inside `python -c`) is analysed the
 *    same way, up to {@link MAX_PAYLOAD_DEPTH} levels deep.
 *
 * Score = sum of the reasons' weights (each code once, its highest weight), capped at 100.
 * Levels: < 25 low, 25–49 medium, 50–79 high, ≥ 80 critical. What this does not catch is in
 * docs/guards.md (it reads text; it does not know what a script file or a binary
 * does).
 */
import { parse as mvdanParse } from 'sh-syntax';
import { z } from 'zod';

import { checkParams, param } from '../../core/index.ts';
import { type Invocation, invocationsOf } from './command-invocations.ts';
import { VIRTUAL_WORKSPACE } from './command-paths.ts';
import { applyRules, COMMAND_RULES, type Reason, ReasonSet } from './command-rules.ts';
import { DYNAMIC, type Walk, walkScript } from './command-walk.ts';
import { type Script, ShellSyntaxError } from './shell-ast.ts';
import { parseShell } from './shell-parse.ts';

export { COMMAND_RULES, DYNAMIC };

export const RISK_LEVELS = ['low', 'medium', 'high', 'critical'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

/** Lowest score of each level above `low`. */
export const RISK_LEVEL_MIN = { medium: 25, high: 50, critical: 80 } as const;

/** Longest command analysed (UTF-16 code units); longer text is `critical` (`too_long`). */
export const MAX_COMMAND_CHARS = 65_536;

/** How deep `sh -c 'eval "bash -c …"'` payloads are followed. */
export const MAX_PAYLOAD_DEPTH = 4;

export type CommandRiskReason = Reason;

export interface CommandRisk {
  /** 0..100. */
  readonly score: number;
  readonly level: RiskLevel;
  /** Heaviest first. */
  readonly reasons: readonly CommandRiskReason[];
  /**
   * Argv of every simple command in the text, in source order, including those inside
   * substitutions, function bodies and compound commands (not those inside `sh -c` strings).
   * A word that is not fully literal (expansion, substitution, unquoted glob or brace list) is
   * {@link DYNAMIC}.
   */
  readonly commands: readonly (readonly string[])[];
  /**
   * Exactly one simple command with only literal words: no pipes, lists, background,
   * substitutions, redirections, assignments, functions or compound commands.
   */
  readonly simple: boolean;
  /** Why the shell parser refused the text. */
  readonly parse_error?: string;
}

export interface AnalyzeCommandOptions {
  /** Absolute workspace directory: relative paths resolve against it. Default: a placeholder,
   * so relative paths count as inside and only `..` climbs out. */
  workspace?: string;
  /** Absolute home directory, so `/home/me/.ssh` is recognised as `~/.ssh`. */
  home?: string;
}

const absolute = param.matching('an absolute path', /^\//);
const analyzeArgs = z.object({
  text: param.string('the command text (a string)'),
  options: param.options({ workspace: absolute.optional(), home: absolute.optional() }).optional(),
});

/** The level of a score. */
export function riskLevel(score: number): RiskLevel {
  if (score >= RISK_LEVEL_MIN.critical) return 'critical';
  if (score >= RISK_LEVEL_MIN.high) return 'high';
  if (score >= RISK_LEVEL_MIN.medium) return 'medium';
  return 'low';
}

/**
 * Parses and scores `text` as a bash command line. Never throws for bad shell text (that is a
 * `critical` result); throws INVALID_PARAMS for arguments of the wrong type.
 */
export async function analyzeCommand(
  text: string,
  options: AnalyzeCommandOptions = {},
): Promise<CommandRisk> {
  checkParams('analyzeCommand', analyzeArgs, { text, options });
  const env = {
    workspace: trimSlash(options.workspace ?? VIRTUAL_WORKSPACE),
    home: options.home === undefined ? null : trimSlash(options.home),
  };
  if (text.length > MAX_COMMAND_CHARS) {
    return verdict(
      [{ code: 'too_long', message: `longer than ${MAX_COMMAND_CHARS} characters`, weight: 100 }],
      [],
      false,
    );
  }
  let top: { start: number; background: boolean; redirs: string[] }[];
  try {
    const file = await mvdanParse(text, { keepComments: false });
    top = file.Stmts.map((s) => ({
      start: s.Position.Offset,
      background: s.Background,
      redirs: s.Redirs.map((r) => r.Op),
    }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const reason = {
      code: 'unparseable',
      message: `the shell parser refused it: ${message}`,
      weight: 100,
    };
    return { ...verdict([reason], [], false), parse_error: message };
  }
  let script: Script;
  try {
    script = parseShell(text);
  } catch (error) {
    const message = error instanceof ShellSyntaxError ? error.message : String(error);
    const reason = {
      code: 'analysis_failed',
      message: `the structure could not be analysed: ${message}`,
      weight: COMMAND_RULES.analysis_failed.weight,
    };
    return verdict([reason], [], false);
  }
  const reasons = new ReasonSet();
  const mismatch = compareTop(text, script, top);
  if (mismatch !== null) reasons.add('parser_mismatch', mismatch);
  const walk = analyse(script, env, reasons, 0);
  const commands = walk.nodes.filter((n) => n.argv.length > 0).map((n) => n.argv);
  return verdict(reasons.list(), commands, isSimple(script, walk));
}

/**
 * True when every simple command of `risk` starts with the words of one of `prefixes`,
 * compared word by word: `git status` allows `git status -s`, not `git statusx`, and not
 * `git status; rm -rf /` (the `rm` has no prefix). A {@link DYNAMIC} word never matches, and
 * nothing matches when the text did not parse or has no command. Prefixes are split on blanks
 * (`'npm run test'`) or given as argv arrays. Only argv is compared: redirections,
 * assignments and the rest are judged by the score, so a policy should allow without asking
 * only when the prefix matches and the level is low.
 */
export function matchesAllowedPrefix(
  risk: CommandRisk,
  prefixes: readonly (string | readonly string[])[],
): boolean {
  if (risk.parse_error !== undefined || risk.commands.length === 0) return false;
  if (
    risk.reasons.some(
      (r) => r.code === 'analysis_failed' || r.code === 'parser_mismatch' || r.code === 'too_long',
    )
  )
    return false;
  const lists = prefixes
    .map((p) =>
      typeof p === 'string'
        ? p
            .trim()
            .split(/\s+/)
            .filter((w) => w !== '')
        : [...p],
    )
    .filter((p) => p.length > 0);
  return risk.commands.every((argv) =>
    lists.some(
      (prefix) =>
        prefix.length <= argv.length &&
        prefix.every((w, i) => argv[i] !== DYNAMIC && argv[i] === w),
    ),
  );
}

function analyse(
  script: Script,
  env: { workspace: string; home: string | null },
  reasons: ReasonSet,
  depth: number,
): Walk {
  const walk = walkScript(script, env.home, env.workspace);
  const invs: Invocation[][] = walk.nodes.map((n) => invocationsOf(n));
  let payloads = 0;
  applyRules({
    walk,
    invs,
    env,
    reasons,
    payload: (text, label) => {
      // Nothing literal left (`bash -c "$(curl …)"`): the caller already scored the dynamic text.
      if (text.replace(/\$\(…\)|<\(…\)|\$\{?\w+\}?|["'\s]/g, '') === '' || ++payloads > 32) return;
      if (depth + 1 > MAX_PAYLOAD_DEPTH) {
        reasons.add(
          'payload_unparseable',
          `${label}: nested deeper than ${MAX_PAYLOAD_DEPTH} levels`,
        );
        return;
      }
      let inner: Script;
      try {
        inner = parseShell(text.slice(0, MAX_COMMAND_CHARS));
      } catch (error) {
        if (/^[\w./-]+$/.test(text.trim())) return;
        const message = error instanceof Error ? error.message : String(error);
        reasons.add('payload_unparseable', `${label} does not parse: ${message}`);
        return;
      }
      const sub = new ReasonSet();
      analyse(inner, env, sub, depth + 1);
      reasons.merge(sub.list(), `${label}: `);
    },
  });
  return walk;
}

function verdict(
  reasons: readonly Reason[],
  commands: readonly (readonly string[])[],
  simple: boolean,
): CommandRisk {
  const score = Math.min(
    100,
    reasons.reduce((sum, r) => sum + r.weight, 0),
  );
  return { score, level: riskLevel(score), reasons, commands, simple };
}

function isSimple(script: Script, walk: Walk): boolean {
  const stmt = script[0];
  if (script.length !== 1 || stmt === undefined || stmt.background || stmt.pipelines.length !== 1)
    return false;
  const pipe = stmt.pipelines[0]!;
  const cmd = pipe.commands[0];
  if (pipe.negated || pipe.commands.length !== 1 || cmd?.type !== 'simple') return false;
  if (cmd.assigns.length > 0 || cmd.redirects.length > 0 || walk.nodes.length !== 1) return false;
  return walk.nodes[0]!.argv.every((w) => w !== DYNAMIC);
}

/** Null when both parsers see the same top-level statements, else what differs. */
function compareTop(
  text: string,
  script: Script,
  top: readonly { start: number; background: boolean; redirs: string[] }[],
): string | null {
  // mvdan/sh reports UTF-8 byte offsets; statements come in order, so count incrementally.
  let seenIndex = 0;
  let seenBytes = 0;
  const bytes = (index: number) => {
    seenBytes += Buffer.byteLength(text.slice(seenIndex, index), 'utf8');
    seenIndex = index;
    return seenBytes;
  };
  if (script.length !== top.length) {
    return `mvdan/sh sees ${top.length} top-level statements, the structural parser ${script.length}`;
  }
  for (let i = 0; i < script.length; i++) {
    const mine = script[i]!;
    const theirs = top[i]!;
    if (bytes(mine.start) !== theirs.start || mine.background !== theirs.background) {
      return `statement ${i + 1} differs between the parsers`;
    }
    const only =
      mine.pipelines.length === 1 && mine.pipelines[0]!.commands.length === 1
        ? mine.pipelines[0]!.commands[0]
        : undefined;
    if (only !== undefined && only.type !== 'function') {
      const ops = only.redirects.map((r) => r.op);
      if (ops.join(' ') !== theirs.redirs.join(' '))
        return `statement ${i + 1}: redirections differ between the parsers`;
    }
  }
  return null;
}

function trimSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}
