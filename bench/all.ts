/**
 * `npm run bench`: the queue benchmark, the cross-process wake-up, the steps benchmark and the
 * events benchmark, one after the other (never in parallel: they would compete for the cores),
 * each in its own process writing into the same results directory; then summary.md.
 * A benchmark that fails does not stop the others; the exit code says whether all passed.
 *
 *   node all.ts [--quick] [--out DIR]
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { parseFlags } from './shared/cli.ts';
import { benchDir } from './shared/machine.ts';
import { renderSummary } from './summary.ts';

const f = parseFlags(process.argv.slice(2));
const out = f.str('out', f.quick ? 'results/quick' : 'results');
const common = [...(f.quick ? ['--quick'] : []), '--out', out];
const steps: Array<[string, string]> = [
  ['queue', 'queue/run.ts'],
  ['cross-process', 'queue/cross-process.ts'],
  ['steps', 'steps/run.ts'],
  ['events', 'events/run.ts'],
];
const outcomes: string[] = [];
let failed = 0;
for (const [name, script] of steps) {
  process.stderr.write(`\n=== ${name}: node ${script} ${common.join(' ')}\n`);
  const t0 = performance.now();
  // stdout is each benchmark's markdown, already written to its file: only stderr is shown.
  const r = spawnSync(process.execPath, [script, ...common], {
    cwd: benchDir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const seconds = Math.round((performance.now() - t0) / 1000);
  if (r.status !== 0) failed += 1;
  outcomes.push(
    `${name}: ${r.status === 0 ? 'ok' : `FAILED (exit ${r.status ?? r.signal})`} in ${seconds} s`,
  );
}
const dir = resolve(benchDir, out);
writeFileSync(join(dir, 'summary.md'), renderSummary(dir));
process.stderr.write(`\n${outcomes.join('\n')}\nwrote ${join(out, 'summary.md')}\n`);
process.exit(failed ? 1 : 0);
