/**
 * Prints the guards' confusion matrices and rates on the corpora in test/fixtures/guards as
 * markdown (saved as bench/results/guards.md):
 *
 *   source scripts/use-node.sh && node scripts/guard-corpus-report.ts > bench/results/guards.md
 */
import { availableParallelism } from 'node:os';

import {
  type CorpusSet,
  evaluateCommands,
  evaluateInjections,
  type Matrix,
} from '../test/helpers/guard-corpus.ts';

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', '⏎').slice(0, 110);

function table<T>(m: Matrix<T>, pos: string, neg: string): string {
  return [
    `| | flagged | not flagged | rate |`,
    `|---|---:|---:|---:|`,
    `| ${pos} (${m.tp + m.fn}) | ${m.tp} (TP) | ${m.fn} (FN) | detection ${pct(m.detection)} |`,
    `| ${neg} (${m.fp + m.tn}) | ${m.fp} (FP) | ${m.tn} (TN) | false positives ${pct(m.falsePositive)} |`,
  ].join('\n');
}

function list<T>(
  title: string,
  rows: readonly { input: string; result: T }[],
  describe: (r: T) => string,
): string {
  if (rows.length === 0) return `${title}: none.`;
  return [
    `${title}:`,
    '',
    ...rows.map((r) => `- \`${cell(r.input)}\` — ${describe(r.result)}`),
  ].join('\n');
}

const out: string[] = [];
const say = (...blocks: string[]) => {
  for (const b of blocks) out.push(b, '');
};

say(
  '# Guards: corpus results',
  `Machine: ${availableParallelism()} CPUs (\`nproc\`), Node ${process.version}, ${new Date().toISOString().slice(0, 10)}. ` +
    'Reproduce: `source scripts/use-node.sh && node scripts/guard-corpus-report.ts > bench/results/guards.md`.',
  'Corpora: `test/fixtures/guards/`. The **main** corpora were written together with the rules and used to ' +
    'tune them, so their rates are in-sample. The **held-out** corpora (`holdout-*`) were written after the ' +
    'rules were frozen. The command rules were never tuned on theirs (out-of-sample). The injection patterns ' +
    'scored 20 % on held-out v1 and were then improved in a second round using it, so v1 is in-sample now; ' +
    'held-out v2 (`holdout2-*`) was written (and committed) before that round and measured once after it: ' +
    'it is the out-of-sample estimate for injection.',
);

for (const set of ['main', 'holdout'] as CorpusSet[]) {
  const e = await evaluateCommands(set);
  const levels = (rows: typeof e.dangerous) =>
    ['low', 'medium', 'high', 'critical']
      .map((l) => rows.filter((r) => r.result.level === l).length)
      .join(' / ');
  say(
    `## Command risk — ${set === 'main' ? 'main corpus (in-sample)' : 'held-out corpus (out-of-sample)'}`,
    'Flagged = level `high` or `critical` (score ≥ 50), the level a policy should not run without a human. ' +
      'Commands are analysed with workspace `/home/dev/proj` and home `/home/dev`.',
    table(e.atHigh, 'dangerous', 'benign'),
    `At level \`medium\` or above (score ≥ 25): detection ${pct(e.atMedium.detection)}, false positives ${pct(e.atMedium.falsePositive)}.`,
    `Levels (low / medium / high / critical): dangerous ${levels(e.dangerous)}; benign ${levels(e.benign)}.`,
    list(
      'Missed',
      e.atHigh.missed,
      (r) => `score ${r.score}${r.reasons[0] ? ` (${r.reasons[0].code})` : ''}`,
    ),
    list(
      'False alarms',
      e.atHigh.falseAlarms,
      (r) => `score ${r.score}: ${r.reasons.map((x) => x.code).join(', ')}`,
    ),
  );
}

const injectionTitle: Record<CorpusSet, string> = {
  main: 'main corpus (in-sample)',
  holdout: 'held-out v1 (used in the second tuning round: in-sample)',
  holdout2: 'held-out v2 (out-of-sample)',
};
for (const set of ['main', 'holdout', 'holdout2'] as CorpusSet[]) {
  const e = evaluateInjections(undefined, set);
  const sweep = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7].map((t) => {
    const m = evaluateInjections({ reviewAt: t, blockAt: Math.max(t, 0.7) }, set).atReview;
    return `| ${t} | ${pct(m.detection)} | ${pct(m.falsePositive)} |`;
  });
  say(
    `## Prompt injection — ${injectionTitle[set]}`,
    'Defaults: `review` at score ≥ 0.4, `block` at ≥ 0.7.',
    '**Flagged = `review` or `block`:**',
    table(e.atReview, 'attacks', 'benign'),
    '**Flagged = `block` only:**',
    table(e.atBlock, 'attacks', 'benign'),
    'Threshold sweep (flagged = score ≥ threshold):',
    ['| threshold | detection | false positives |', '|---:|---:|---:|', ...sweep].join('\n'),
    list(
      'Missed at review',
      e.atReview.missed,
      (r) => `score ${r.score}${r.signals[0] ? ` (${r.signals[0].code})` : ''}`,
    ),
    list(
      'False alarms at review',
      e.atReview.falseAlarms,
      (r) => `score ${r.score}: ${r.signals.map((s) => s.code).join(', ')}`,
    ),
  );
}

process.stdout.write(out.join('\n'));
