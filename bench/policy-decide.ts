/**
 * Policy decision latency: `PolicyDecisionPoint.decide` on a realistic policy (10 agents in
 * YAML + 5 raw Cedar policies + the built-ins), cached and uncached, plus the Cedar calls
 * behind it (why the PDP pre-parses per-principal subsets). Targets (issue): cached ≤ 20 µs,
 * uncached ≤ 500 µs. Needs no bench dependencies:
 *
 *   node bench/policy-decide.ts            (from the repository root; `--quick` for a smoke run)
 *
 * Writes bench/results/policy.md (results/quick/policy.md with --quick).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { DecisionRequest } from '../src/core/index.ts';
import {
  acquireSet,
  evaluatePolicies,
  evaluateSet,
  releaseSet,
} from '../src/security/policy/cedar.ts';
import {
  actionEntity,
  principalEntity,
  resourceEntity,
  toCedarContext,
} from '../src/security/policy/entities.ts';
import { PolicyDecisionPoint } from '../src/security/policy/index.ts';
import { LoadedVersion } from '../src/security/policy/loaded-version.ts';
import { benchDir, loadAverage, machineInfo, wardenInfo, wardenLine } from './shared/machine.ts';
import { percentile } from './shared/stats.ts';

const quick = process.argv.includes('--quick');
const SAMPLES = quick ? 5_000 : 200_000;
const UNCACHED_SAMPLES = quick ? 2_000 : 50_000;
const COLD_ROUNDS = quick ? 3 : 20;

const AGENTS = [
  'research/search',
  'research/summarise',
  'coder/plan',
  'coder/edit',
  'coder/test',
  'ops/deploy',
  'ops/monitor',
  'support/triage',
  'support/reply',
  'data/etl',
];

function policyYaml(): string {
  let out = 'version: 1\nmode: enforce\nagents:\n';
  AGENTS.forEach((agent, i) => {
    const [wf] = agent.split('/');
    out += `  ${agent}:
    trust: ${i % 4 === 0 ? 'act-with-approval' : 'act'}
    tools: [web_search, calculator, "mcp.github.*", "mcp.${wf}.*", tool_${i}_a, tool_${i}_b]
    ask: [mcp.github.create_issue, mcp.github.merge_pr]
    urls: ["api.${wf}.example.com", "*.wikipedia.org", "https://docs.example.com/v${i}/", "github.com"]
    files: { read: [/srv/${wf}, /usr/share/doc], write: [/srv/${wf}/out, /tmp/${wf}] }
    commands: ["git status", "git diff", "npm test", "ls", "cat"]
    max_command_risk: medium
    kv: { read: [${wf}], write: [${wf}/state] }
    budget: { max_tool_calls: 200, max_http_bytes: 50000000 }
`;
  });
  out += `  "*":
    trust: observe
    tools: [calculator]
secrets:
  GITHUB_TOKEN: { agents: [coder, ops/deploy] }
tokens:
  tok_ci: { allow_methods: ["session.*"], deny_methods: [session.delete] }
`;
  return out;
}

const CEDAR = `@id("no-delete-tools")
forbid (principal, action == Action::"tool.call", resource is Tool)
when { resource.name like "*.delete_*" };

@id("no-etc-writes")
forbid (principal, action == Action::"fs.write", resource is Path)
when { resource.path like "/etc/*" };

@id("injection-review")
@decision("ask")
permit (principal is Agent, action == Action::"http.request", resource is Url)
when { context has injection && context.injection > 50 };

@id("ops-shell")
permit (principal in Workflow::"ops", action == Action::"shell.exec", resource is Command)
when { resource.simple && resource.program == "kubectl" && context has risk && context.risk == "low" };

@id("no-night-deploys")
forbid (principal == Agent::"ops/deploy", action == Action::"shell.exec", resource)
when { context has hour && (context.hour < 6 || context.hour > 22) };
`;

/** A varied request mix: every agent, every action class, allow / ask / deny outcomes. */
function requests(): DecisionRequest[] {
  const out: DecisionRequest[] = [];
  AGENTS.forEach((agent, i) => {
    const [wf] = agent.split('/');
    const principal = `agent:${agent}`;
    const ctx = {
      risk: 'low',
      usage: { tool_calls: 10 + i, http_bytes: 1000 * i },
      method: 'GET',
      hour: 12,
    };
    out.push(
      { principal, action: 'tool.call', resource: 'tool:web_search', context: ctx },
      { principal, action: 'tool.call', resource: 'tool:mcp.github.create_issue', context: ctx },
      { principal, action: 'tool.call', resource: 'tool:mcp.github.delete_repo', context: ctx },
      { principal, action: 'tool.call', resource: `tool:tool_${i}_b`, context: ctx },
      { principal, action: 'tool.call', resource: 'tool:unknown', context: ctx },
      {
        principal,
        action: 'http.request',
        resource: `url:https://api.${wf}.example.com/v1/items?page=2`,
        context: ctx,
      },
      {
        principal,
        action: 'http.request',
        resource: 'url:https://en.wikipedia.org/wiki/Cedar',
        context: ctx,
      },
      {
        principal,
        action: 'http.request',
        resource: 'url:http://169.254.169.254/latest/meta-data',
        context: ctx,
      },
      { principal, action: 'fs.read', resource: `path:/srv/${wf}/data/input.csv`, context: ctx },
      { principal, action: 'fs.write', resource: `path:/srv/${wf}/out/report.md`, context: ctx },
      {
        principal,
        action: 'fs.write',
        resource: '/etc/passwd'.replace(/^/, 'path:'),
        context: ctx,
      },
      { principal, action: 'shell.exec', resource: 'command:git status --short', context: ctx },
      { principal, action: 'shell.exec', resource: 'command:curl x | sh', context: ctx },
      { principal, action: 'kv.get', resource: `kv:${wf}/cursor`, context: ctx },
    );
  });
  return out;
}

function hr(): number {
  return Number(process.hrtime.bigint());
}

interface Stats {
  median: number;
  p99: number;
  mean: number;
  n: number;
}

function stats(samplesNs: number[]): Stats {
  const us = samplesNs.map((x) => x / 1000);
  return {
    median: percentile(us, 50)!,
    p99: percentile(us, 99)!,
    mean: us.reduce((a, b) => a + b, 0) / us.length,
    n: us.length,
  };
}

/** Calls made so far by {@link measure} (warm-up included): unique per call. */
let seq = 0;

/** Times `fn(seq, measured)` one call at a time, after a warm-up. */
function measure(
  n: number,
  fn: (i: number, measured: boolean) => unknown,
  warmup = Math.min(n, 2_000),
): Stats {
  for (let i = 0; i < warmup; i++) fn(seq++, false);
  const samples = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const k = seq++;
    const t = hr();
    fn(k, true);
    samples[i] = hr() - t;
  }
  return stats(samples);
}

const started = Date.now();
const loadStart = loadAverage();
const files = { 'policy.yaml': policyYaml(), 'policies/guards.cedar': CEDAR };
const reqs = requests();

// Load (validate + compile) time.
const loadSamples: number[] = [];
const probe = new PolicyDecisionPoint();
for (let i = 0; i < (quick ? 3 : 20); i++) {
  const t = hr();
  probe.load(files, { baseDir: '/home/w' });
  loadSamples.push(hr() - t);
}
const prepared = probe.load(files, { baseDir: '/home/w' });
probe.close();

// Outcome mix, so the report says what was decided.
const mixPdp = new PolicyDecisionPoint({ cacheSize: 0 });
mixPdp.activate(mixPdp.load(files, { baseDir: '/home/w' }));
const mix = { allow: 0, ask: 0, deny: 0 };
for (const r of reqs) mix[mixPdp.decide(r).decision]++;

// Cached: every request decided once, then all hits.
const cachedPdp = new PolicyDecisionPoint();
cachedPdp.activate(cachedPdp.load(files, { baseDir: '/home/w' }));
for (const r of reqs) cachedPdp.decide(r);
let hits = 0;
const cached = measure(SAMPLES, (i, measured) => {
  if (cachedPdp.decide(reqs[i % reqs.length]!).cached && measured) hits++;
});

// Uncached: the cache turned off, pre-parsed subsets warm (the steady state after a miss).
const uncached = measure(UNCACHED_SAMPLES, (i) => mixPdp.decide(reqs[i % reqs.length]!));

// Uncached with the cache on but every request new (a counter in the context): includes
// canonical JSON, cache insertion and LRU eviction.
const missPdp = new PolicyDecisionPoint({ cacheSize: 10_000 });
missPdp.activate(missPdp.load(files, { baseDir: '/home/w' }));
const misses = measure(UNCACHED_SAMPLES, (i) => {
  const r = reqs[i % reqs.length]!;
  return missPdp.decide({ ...r, context: { ...r.context, n: i } });
});

// Cold: the first decision of each agent under a freshly activated version (pre-parses its subset).
const coldSamples: number[] = [];
for (let round = 0; round < COLD_ROUNDS; round++) {
  const pdp = new PolicyDecisionPoint({ cacheSize: 0 });
  pdp.activate(
    pdp.load({ ...files, 'policies/round.cedar': `// round ${round}\n` }, { baseDir: '/home/w' }),
  );
  for (const agent of AGENTS) {
    const t = hr();
    pdp.decide({
      principal: `agent:${agent}`,
      action: 'tool.call',
      resource: 'tool:web_search',
      context: { risk: 'low' },
    });
    coldSamples.push(hr() - t);
  }
  pdp.close();
}
const cold = stats(coldSamples);

// The Cedar call alone: whole set pre-parsed vs the principal's subset vs parsing per call.
const all = prepared.policies;
const request = reqs[5]!;
const principal = principalEntity(request.principal);
const actionE = actionEntity(request.action, {});
const resourceE = resourceEntity(request.resource);
const call = {
  principal: principal.uid,
  action: actionE.uid,
  resource: resourceE.uid,
  context: toCedarContext(request.context),
  entities: [principal, actionE, resourceE],
};
const fullSet = acquireSet(all);
const version = new LoadedVersion(prepared);
const subset = version.subsetFor(request.principal, principal, request.action, actionE);
const subsetPolicies = subset.policies;
const subsetSet = subset.setId;
const principalOnly = acquireSet(
  all.filter((p) =>
    ['*', 'is:Agent', `eq:Agent::"research/search"`, `in:Workflow::"research"`].includes(p.bucket),
  ),
);
const principalOnlySize = all.filter((p) =>
  ['*', 'is:Agent', `eq:Agent::"research/search"`, `in:Workflow::"research"`].includes(p.bucket),
).length;
const engineFull = measure(quick ? 1_000 : 10_000, () => evaluateSet(fullSet, call));
const enginePrincipal = measure(quick ? 1_000 : 20_000, () => evaluateSet(principalOnly, call));
const engineSubset = measure(quick ? 1_000 : 20_000, () => evaluateSet(subsetSet, call));
const engineParse = measure(quick ? 20 : 300, () => evaluatePolicies(all, call), 20);
// Where the time of one stateful call goes: the request's entities and context are converted
// on every call (cedar-wasm has no way to keep them).
const bare = { ...call, entities: [], context: {} };
const engineBare = measure(quick ? 1_000 : 20_000, () => evaluateSet(subsetSet, bare));
const engineEntities = measure(quick ? 1_000 : 20_000, () =>
  evaluateSet(subsetSet, { ...call, context: {} }),
);
releaseSet(fullSet);
releaseSet(principalOnly);
version.release();
mixPdp.close();
cachedPdp.close();
missPdp.close();

const m = machineInfo();
const w = wardenInfo();
const fmt = (x: number) => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
const row = (name: string, s: Stats, target = '') =>
  `| ${name} | ${fmt(s.median)} | ${fmt(s.p99)} | ${fmt(s.mean)} | ${s.n.toLocaleString('en-US')} | ${target} |`;
const verdict = (s: Stats, limit: number) =>
  `≤ ${limit} µs: median ${s.median <= limit ? 'met' : '**missed**'}, p99 ${s.p99 <= limit ? 'met' : '**missed**'}`;
const loadMs = stats(loadSamples);

const L: string[] = [];
L.push('# Policy decision benchmark: `PolicyDecisionPoint.decide`');
L.push('');
L.push(
  `Generated ${new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(
      /\.\d+Z$/,
      ' UTC',
    )}${quick ? ' — **quick smoke run, not for comparison**' : ''}, in ${Math.round((Date.now() - started) / 1000)} s.`,
);
L.push('');
L.push(
  `- **Machine:** ${m.cpu}, ${m.cores} cores (nproc), ${m.memoryGiB} GiB RAM, ${m.os}; Node ${m.node}; cedar-wasm 4.13.0 (Node build)`,
);
L.push(`- **Load average** at start: ${loadStart}; at end: ${loadAverage()}`);
L.push(`- **Warden:** ${wardenLine(w)}`);
L.push(
  `- **Command:** \`node bench/policy-decide.ts${quick ? ' --quick' : ''}\` (from the repository root)`,
);
L.push(
  `- **Policy:** \`policy.yaml\` with 10 agents (each: tools incl. two MCP groups, ask, 4 URL patterns, file roots, 5 command prefixes, KV, budget caps, trust) + \`*\`, a secret and a token rule, and \`policies/guards.cedar\` with 5 raw policies (3 forbids, 1 ask, 1 permit): **${all.length} Cedar policies** in the version, built-ins included. Loading it (validate + compile) takes ${fmt(loadMs.median / 1000)} ms (median of ${loadMs.n}).`,
);
L.push(
  `- **Requests:** ${reqs.length} distinct requests, 14 per agent over tool.call, http.request, fs.read, fs.write, shell.exec and kv.get, with a context (risk, usage, method, hour); outcomes ${mix.allow} allow, ${mix.ask} ask, ${mix.deny} deny. Requests are decided round-robin.`,
);
L.push(
  '- **Timing:** each call timed alone with `process.hrtime.bigint()` after a warm-up; p99 is a real sample (nearest rank) and includes GC pauses. One process, no other load from the benchmark.',
);
const busiest = Math.max(...[loadStart, loadAverage()].map((l) => Number(l.split(' ')[0])));
if (busiest > m.cores)
  L.push(
    `- **Note:** the machine was busy (1-minute load ${busiest.toFixed(2)} on ${m.cores} cores, from other work): p99 values include time spent waiting for a CPU; medians are the stable figure.`,
  );
L.push('');
L.push('| Case | Median (µs) | p99 (µs) | Mean (µs) | Calls | Target |');
L.push('|---|--:|--:|--:|--:|---|');
L.push(row('**Cached** decision (hit; LRU refresh)', cached, verdict(cached, 20)));
L.push(
  row('**Uncached** decision (cache off; subsets pre-parsed)', uncached, verdict(uncached, 500)),
);
L.push(
  row('Uncached, cache on, every request new (key, insert, evict)', misses, verdict(misses, 500)),
);
L.push(row("Cold: an agent's first decision under a new version (pre-parses its subset)", cold));
L.push('');
L.push(
  `Cache hits flagged \`cached: true\`: ${hits.toLocaleString('en-US')} of ${cached.n.toLocaleString('en-US')} timed calls.`,
);
L.push('');
L.push('## The Cedar call alone (why per-principal, per-action subsets)');
L.push('');
L.push(
  `One http.request of \`agent:research/search\`, through cedar-wasm directly (no cache, no PDP logic):`,
);
L.push('');
L.push('| Cedar call | Median (µs) | p99 (µs) | Mean (µs) | Calls |');
L.push('|---|--:|--:|--:|--:|');
L.push(
  `| \`statefulIsAuthorized\`, the pre-parsed subset for this principal and action (${subsetPolicies.length} policies; what the PDP uses) | ${fmt(engineSubset.median)} | ${fmt(engineSubset.p99)} | ${fmt(engineSubset.mean)} | ${engineSubset.n.toLocaleString('en-US')} |`,
);
L.push(
  `| \`statefulIsAuthorized\`, the subset for this principal, any action (${principalOnlySize} policies) | ${fmt(enginePrincipal.median)} | ${fmt(enginePrincipal.p99)} | ${fmt(enginePrincipal.mean)} | ${enginePrincipal.n.toLocaleString('en-US')} |`,
);
L.push(
  `| \`statefulIsAuthorized\`, the whole version pre-parsed (${all.length} policies) | ${fmt(engineFull.median)} | ${fmt(engineFull.p99)} | ${fmt(engineFull.mean)} | ${engineFull.n.toLocaleString('en-US')} |`,
);
L.push(
  `| the same subset, request without entities or context (not a real decision: the cost floor) | ${fmt(engineBare.median)} | ${fmt(engineBare.p99)} | ${fmt(engineBare.mean)} | ${engineBare.n.toLocaleString('en-US')} |`,
);
L.push(
  `| the same subset, entities but no context | ${fmt(engineEntities.median)} | ${fmt(engineEntities.p99)} | ${fmt(engineEntities.mean)} | ${engineEntities.n.toLocaleString('en-US')} |`,
);
L.push(
  `| \`isAuthorized\`, policies parsed on every call (${all.length} policies) | ${fmt(engineParse.median)} | ${fmt(engineParse.p99)} | ${fmt(engineParse.mean)} | ${engineParse.n.toLocaleString('en-US')} |`,
);
L.push('');
L.push(
  "cedar-wasm's stateful call pays for every policy in the pre-parsed set, whether its scope matches or not, so the PDP pre-parses, per principal and action, only the policies whose scope can match them (principal `==` it, `in` an ancestor, `is` its type or unconstrained; action `==` it, `in` one of its groups or unconstrained): the uncached cost then grows with the policies that name this agent and action, not with the size of the whole policy. What remains is mostly converting the request: the three entities (principal, action with its groups, resource with its attributes) and the context are passed as JS objects and rebuilt inside Cedar on every call — the rows above show each part's share. The decision cache is what makes repeated decisions cheap.",
);
L.push('');

const outDir = resolve(benchDir, quick ? 'results/quick' : 'results');
mkdirSync(outDir, { recursive: true });
writeFileSync(resolve(outDir, 'policy.md'), `${L.join('\n')}`);
console.log(L.join('\n'));
