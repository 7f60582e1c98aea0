/**
 * What the daemon's memory is made of at start: a fresh process imports the modules `warden
 * serve` loads, one at a time in layer order (each import includes what it imports and was not
 * loaded yet), and prints the resident set and V8 heap after each, after a full GC.
 *
 *   node --expose-gc acp/import-cost.mjs source|built [module|layers]
 *
 * Plain JavaScript on purpose: a .ts entry would load Node's type stripper before the first
 * sample and hide its cost (it is what `source` pays at the first src/ import).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoDir = join(dirname(fileURLToPath(import.meta.url)), '../..');

const build = process.argv[2] ?? 'source';
const gc = globalThis.gc;

const third = [
  'better-sqlite3',
  'zod',
  'ws',
  'pino',
  'prom-client',
  'commander',
  'yaml',
  'croner',
  'openai',
];
const layers = [
  'core/index',
  'store/index',
  'kernel/index',
  'queue/index',
  'runtime/index',
  'security/index',
  'protocols/commands/index',
  'protocols/acp/index',
  'protocols/http/index',
  'daemon/index',
  'cli/program',
];

function rssMiB() {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

function sample(name, ms = 0) {
  gc?.();
  const m = process.memoryUsage();
  return {
    name,
    ms,
    rss: rssMiB(),
    heapUsed: m.heapUsed / 2 ** 20,
    heapTotal: m.heapTotal / 2 ** 20,
    external: m.external / 2 ** 20,
  };
}

const rows = [sample('node (nothing imported)')];
const only = process.argv[3]; // one third-party module alone, or 'layers'
for (const mod of only && only !== 'layers' ? [only] : only === 'layers' ? [] : third) {
  const t = performance.now();
  await import(mod);
  rows.push(sample(mod, performance.now() - t));
}
if (!only || only === 'layers')
  for (const layer of layers) {
    const file =
      build === 'source'
        ? join(repoDir, 'src', `${layer}.ts`)
        : join(repoDir, 'dist', `${layer}.js`);
    const t = performance.now();
    await import(file);
    rows.push(sample(`src/${layer}`, performance.now() - t));
  }
// The daemon also runs a heartbeat thread (queue/heartbeat-pump.ts): a second V8 isolate.
{
  const { Worker } = await import('node:worker_threads');
  const t = performance.now();
  const w = new Worker('setInterval(() => {}, 1000);', { eval: true });
  await new Promise((resolve) => w.once('online', resolve));
  const ms = performance.now() - t;
  await new Promise((resolve) => setTimeout(resolve, 300));
  rows.push(sample('+ one idle worker_threads Worker', ms));
  await w.terminate();
}
process.stdout.write(`${JSON.stringify(rows)}\n`);
