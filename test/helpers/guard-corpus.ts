/**
 * The guard corpora (test/fixtures/guards) and their confusion matrices, shared by the corpus
 * tests and scripts/guard-corpus-report.ts so both report the same numbers.
 */
import { readFileSync } from 'node:fs';

import { analyzeCommand, type CommandRisk } from '../../src/security/guards/command-risk.ts';
import { type InjectionScore, scoreInjection } from '../../src/security/guards/prompt-injection.ts';

const dir = new URL('../fixtures/guards/', import.meta.url);

/** Where the corpus commands are assumed to run. */
export const CORPUS_ENV = { workspace: '/home/dev/proj', home: '/home/dev' } as const;

/**
 * `main`: the corpora the rules were developed against. `holdout`: written after the rules were
 * frozen; the command rules were never tuned on it, the injection patterns were in a second
 * round (so for injection it is in-sample now). `holdout2` (injection only): written before
 * that second round and measured once after it, never used for tuning.
 */
export type CorpusSet = 'main' | 'holdout' | 'holdout2';
const prefix = (set: CorpusSet) => (set === 'main' ? '' : `${set}-`);

/** Commands of `commands-<kind>.txt`: one per line, skipping blank lines and `# ` comments. */
export function loadCommands(kind: 'dangerous' | 'benign', set: CorpusSet = 'main'): string[] {
  return readFileSync(new URL(`${prefix(set)}commands-${kind}.txt`, dir), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('# '));
}

export interface InjectionSample {
  readonly text: string;
  /** Where such text comes from: tool_output, web_page, email, chat, document, code… */
  readonly source: string;
  readonly note?: string;
}

/** Samples of `injection-<kind>.jsonl`. */
export function loadInjections(
  kind: 'attacks' | 'benign',
  set: CorpusSet = 'main',
): InjectionSample[] {
  return readFileSync(new URL(`${prefix(set)}injection-${kind}.jsonl`, dir), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as InjectionSample);
}

export interface Matrix<T> {
  /** Positives (dangerous / attacks) flagged. */
  readonly tp: number;
  /** Positives missed. */
  readonly fn: number;
  /** Negatives (benign) flagged. */
  readonly fp: number;
  readonly tn: number;
  readonly detection: number;
  readonly falsePositive: number;
  readonly missed: readonly { input: string; result: T }[];
  readonly falseAlarms: readonly { input: string; result: T }[];
}

function matrix<T>(
  positives: readonly { input: string; result: T }[],
  negatives: readonly { input: string; result: T }[],
  flagged: (r: T) => boolean,
): Matrix<T> {
  const missed = positives.filter((p) => !flagged(p.result));
  const falseAlarms = negatives.filter((n) => flagged(n.result));
  return {
    tp: positives.length - missed.length,
    fn: missed.length,
    fp: falseAlarms.length,
    tn: negatives.length - falseAlarms.length,
    detection: (positives.length - missed.length) / positives.length,
    falsePositive: falseAlarms.length / negatives.length,
    missed,
    falseAlarms,
  };
}

export interface CommandEvaluation {
  readonly dangerous: readonly { input: string; result: CommandRisk }[];
  readonly benign: readonly { input: string; result: CommandRisk }[];
  /** At `high` or above (score ≥ 50): what a policy should not run without a human. */
  readonly atHigh: Matrix<CommandRisk>;
  /** At `medium` or above (score ≥ 25). */
  readonly atMedium: Matrix<CommandRisk>;
}

export async function evaluateCommands(set: CorpusSet = 'main'): Promise<CommandEvaluation> {
  const run = async (kind: 'dangerous' | 'benign') => {
    const out: { input: string; result: CommandRisk }[] = [];
    for (const input of loadCommands(kind, set)) {
      out.push({ input, result: await analyzeCommand(input, CORPUS_ENV) });
    }
    return out;
  };
  const dangerous = await run('dangerous');
  const benign = await run('benign');
  return {
    dangerous,
    benign,
    atHigh: matrix(dangerous, benign, (r) => r.score >= 50),
    atMedium: matrix(dangerous, benign, (r) => r.score >= 25),
  };
}

export interface InjectionEvaluation {
  readonly attacks: readonly { input: string; result: InjectionScore }[];
  readonly benign: readonly { input: string; result: InjectionScore }[];
  /** Flagged = verdict review or block (score ≥ reviewAt). */
  readonly atReview: Matrix<InjectionScore>;
  /** Flagged = verdict block (score ≥ blockAt). */
  readonly atBlock: Matrix<InjectionScore>;
}

export function evaluateInjections(
  options?: { reviewAt?: number; blockAt?: number },
  set: CorpusSet = 'main',
): InjectionEvaluation {
  const run = (kind: 'attacks' | 'benign') =>
    loadInjections(kind, set).map((s) => ({
      input: s.text,
      result: scoreInjection(s.text, options),
    }));
  const attacks = run('attacks');
  const benign = run('benign');
  return {
    attacks,
    benign,
    atReview: matrix(attacks, benign, (r) => r.verdict !== 'clean'),
    atBlock: matrix(attacks, benign, (r) => r.verdict === 'block'),
  };
}
