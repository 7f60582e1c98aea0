/**
 * Multi-node chaos (docs/scale-out.md): four `warden serve` nodes on one PostgreSQL schema and
 * nothing else coordinating them. Remote worker processes (failing over between nodes) run job
 * tasks; the nodes' own in-process workers run the steps of workflow runs; subscribers on
 * different nodes follow sessions; a stale worker keeps completing attempts that were taken
 * from it. Meanwhile nodes are SIGKILLed and restarted at random and PostgreSQL itself is
 * restarted. Afterwards: 0 tasks lost, 0 duplicated effects, 0 stale completions accepted,
 * every run completed, `warden ledger verify` ok, every subscriber saw every event once in order.
 *
 * Sizes: a CI size by default (still 4 nodes, kills and one PostgreSQL restart);
 * WARDEN_CHAOS_FULL=1 for the issue's full size (≥ 20,000 tasks, ≥ 200 runs, ≥ 20 kills, two
 * PostgreSQL restarts; bench/results/multi-node-chaos.md). Each size can be set on its own:
 * WARDEN_CHAOS_TASKS, _RUNS, _KILLS, _PG_RESTARTS, _WORKERS, _STALE.
 *
 * This file restarts the local PostgreSQL server: run it on its own, not beside other
 * PostgreSQL tests.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, expect, it } from 'vitest';

import {
  type EventRecord,
  isWardenError,
  type Subscription,
  type WardenClient,
} from '../../src/client/index.ts';
import { type Child, killChildren, spawnScript } from '../helpers/child.ts';
import { json } from '../helpers/cli.ts';
import { connectFailover } from '../helpers/failover-socket.ts';
import { PgCluster, restartPostgres } from '../helpers/pg-cluster.ts';
import { dropSchemas, freshSchema, PG_URL, pgQuery } from '../helpers/postgres.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const FULL = process.env.WARDEN_CHAOS_FULL === '1';
function size(name: string, full: number, ci: number): number {
  const raw = process.env[`WARDEN_CHAOS_${name}`];
  const n = raw === undefined || raw === '' ? (FULL ? full : ci) : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`WARDEN_CHAOS_${name}: bad '${raw}'`);
  return n;
}
const TASKS = size('TASKS', 20_000, 1_200);
const RUNS = size('RUNS', 200, 24);
const KILLS = size('KILLS', 20, 4);
const PG_RESTARTS = size('PG_RESTARTS', 2, 1);
const WORKERS = size('WORKERS', 3, 2);
const STALE = size('STALE', 20, 4);
const NODES = 4;
const TASK_SESSIONS = 8;
const RUN_SESSIONS = 4;
/** Remote workers' lease: long enough to ride out a PostgreSQL restart while heartbeating. */
const REMOTE_LEASE_MS = 10_000;
const REPORT = process.env.WARDEN_CHAOS_REPORT;

const WORKER = fileURLToPath(new URL('../helpers/cluster-worker-process.ts', import.meta.url));
const STALE_WORKER = fileURLToPath(new URL('../helpers/stale-worker-process.ts', import.meta.url));

const schema = freshSchema('chaos');
const q = (name: string) => `"${schema}".${name}`;
let cluster: PgCluster | undefined;
const clients: WardenClient[] = [];

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await killChildren();
  await cluster?.stopAll('SIGKILL');
  await dropSchemas();
  removeTempDirs();
}, 60_000);

const random = (n: number) => Math.floor(Math.random() * n);

/** Retries a call through node deaths (retryable errors) until it answers. */
async function retrying<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!isWardenError(error) || !error.retryable) throw error;
      await sleep(50);
    }
  }
}

/** A SQL count that waits out a PostgreSQL restart. */
async function sqlCount(text: string): Promise<number> {
  for (;;) {
    try {
      const rows = await pgQuery<{ n: string }>(text);
      return Number(rows[0]!.n);
    } catch {
      await sleep(200);
    }
  }
}

/** A client that follows one session from seq 0 across node deaths; records every seq. */
interface Follower {
  readonly key: string;
  readonly seqs: number[];
  readonly sub: Subscription;
  readonly client: WardenClient;
  readonly dialed: string[];
}

async function follow(c: PgCluster, key: string): Promise<Follower> {
  const { client, socket } = await connectFailover(c.urls, c.token, `follower-${key}`);
  clients.push(client);
  const { session } = await retrying(() => client.sessions.create({ key }));
  const seqs: number[] = [];
  const sub = await retrying(() =>
    client.subscribe(session.id, {
      fromSeq: 0,
      onEvent: (e: EventRecord) => void seqs.push(e.seq),
    }),
  );
  return { key, seqs, sub, client, dialed: socket.dialed };
}

function workflow(i: number) {
  return {
    name: `chaos-run-${i}`,
    stages: [
      { name: 'plan', agent: { kind: 'noop', delay: '20ms' }, default_next: 'act' },
      { name: 'act', agent: { kind: 'noop', delay: '20ms' }, default_next: 'report' },
      { name: 'report', agent: { kind: 'noop', output: { run: i } }, default_next: 'end' },
    ],
  };
}

it(`${NODES} nodes on one PostgreSQL: ${TASKS} tasks, ${RUNS} runs, ${KILLS}+ node kills, ${PG_RESTARTS} PostgreSQL restarts: nothing lost, duplicated or stale`, async () => {
  const started = Date.now();
  const c = await PgCluster.create({
    storeUrl: `${PG_URL}?schema=${schema}`,
    nodes: NODES,
    poolSize: 5,
    configYaml: [
      'worker:',
      '  concurrency: 4',
      // In-process step leases: a killed node's steps come back within seconds.
      '  lease: 3s',
      'lanes:',
      '  jobs: {}',
      '  stale: {}',
    ].join('\n'),
  });
  cluster = c;
  await c.startAll();
  const dir = tempDir('warden-chaos-out-');

  // The stale worker first: it claims the `stale` lane's tasks (with a 1 s lease, never
  // renewed) before any other worker runs, and completes each with its old token later.
  const stale = spawnScript(STALE_WORKER, [
    JSON.stringify({
      urls: c.urls,
      token: c.token,
      lanes: ['stale'],
      claims: STALE,
      leaseMs: 1_000,
      name: 'stale',
    }),
  ]);
  await stale.line((l) => l === 'ready', 'stale worker ready', 60_000);
  {
    const { client } = await connectFailover(c.urls, c.token, 'stale-submitter');
    clients.push(client);
    for (let i = 0; i < STALE; i++)
      await retrying(() =>
        client.tasks.submit({
          name: 'work',
          lane: 'stale',
          session_key: 'jobs-0',
          idempotency_key: `stale-${i}`,
          payload: { ms: 1 },
          max_attempts: 20,
        }),
      );
  }
  if (STALE > 0) await stale.line((l) => l.startsWith('claimed '), 'stale claims', 60_000);

  // Remote workers, each in its own process, dialing random nodes (and the next after a drop).
  const workers: Child[] = [];
  for (let w = 0; w < WORKERS; w++) {
    const effects = join(dir, `effects-${w}.tsv`);
    appendFileSync(effects, '');
    workers.push(
      spawnScript(WORKER, [
        JSON.stringify({
          urls: c.urls,
          token: c.token,
          lanes: ['jobs', 'stale'],
          leaseMs: REMOTE_LEASE_MS,
          concurrency: 8,
          effects,
          name: `remote-${w}`,
        }),
      ]),
    );
  }
  for (const w of workers) await w.line((l) => l === 'ready', 'worker ready', 60_000);

  // Subscribers: two job sessions and two run sessions, each on its own client.
  const followers = await Promise.all(
    ['jobs-0', 'jobs-1', 'runs-0', 'runs-1'].map((key) => follow(c, key)),
  );

  // Submitters: 4 clients, 8 submits in flight each, every task with its own idempotency key.
  let submitted = 0;
  const submitters = Array.from({ length: 4 }, async (_, s) => {
    const { client } = await connectFailover(c.urls, c.token, `submitter-${s}`);
    clients.push(client);
    const mine = Array.from({ length: TASKS }, (_, i) => i).filter((i) => i % 4 === s);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < mine.length) {
          const i = mine[next++]!;
          // One payload per task: a retry must resend exactly the same request.
          const payload = { i, ms: random(4) };
          await retrying(() =>
            client.tasks.submit({
              name: 'work',
              lane: 'jobs',
              session_key: `jobs-${i % TASK_SESSIONS}`,
              idempotency_key: `chaos-${i}`,
              payload,
              max_attempts: 20,
            }),
          );
          submitted++;
        }
      }),
    );
  });

  // Runs: started through random nodes; a start whose answer was lost is looked up (by the
  // workflow's unique name) before it is tried again, so each run is started exactly once.
  let runsStarted = 0;
  const starting = (async () => {
    const { client } = await connectFailover(c.urls, c.token, 'runs');
    clients.push(client);
    for (let i = 0; i < RUNS; i++) {
      for (;;) {
        try {
          await client.runs.start({
            workflow: workflow(i),
            session_key: `runs-${i % RUN_SESSIONS}`,
            input: { i },
          });
          break;
        } catch (error) {
          if (!isWardenError(error) || !error.retryable) throw error;
          await sleep(1_000);
          const n = await sqlCount(
            `SELECT count(*) AS n FROM ${q('processes')} WHERE workflow_name = 'chaos-run-${i}'`,
          );
          if (n > 0) break;
        }
      }
      runsStarted++;
      await sleep(random(40));
    }
  })();

  const jobsDone = () =>
    sqlCount(`SELECT count(*) AS n FROM ${q('tasks')} WHERE kind = 'job' AND state = 'succeeded'`);
  const runsDone = () =>
    sqlCount(`SELECT count(*) AS n FROM ${q('processes')} WHERE state = 'terminated'`);

  // Chaos: a random node SIGKILLed every few seconds and restarted on the same port; PostgreSQL
  // restarted when the work passes 1/(n+1), 2/(n+1)… of the tasks. Runs until the work is done
  // and the planned kills and restarts have all happened.
  let kills = 0;
  let pgRestarts = 0;
  const pgDownMs: number[] = [];
  let workDone = false;
  const nodeOf = (url: string | undefined) => {
    const index = url === undefined ? -1 : c.urls.indexOf(url);
    return index < 0 ? random(NODES) : index;
  };
  const chaos = (async () => {
    while (!workDone || kills < KILLS || pgRestarts < PG_RESTARTS) {
      await sleep(1_500 + random(2_500));
      const progress = (await jobsDone()) / TASKS;
      if (
        pgRestarts < PG_RESTARTS &&
        (progress >= (pgRestarts + 1) / (PG_RESTARTS + 1) || workDone)
      ) {
        pgDownMs.push(await restartPostgres());
        pgRestarts++;
        continue;
      }
      if (kills >= KILLS && workDone) continue;
      // The first kill takes a follower's node, so at least one client must move to another
      // node (the later ones fall at random).
      const victim = kills === 0 ? nodeOf(followers[0]!.dialed.at(-1)) : random(NODES);
      await c.kill(victim);
      kills++;
      await sleep(200 + random(1_500));
      await c.start(victim);
    }
  })();

  await Promise.all([...submitters, starting]);
  expect(runsStarted).toBe(RUNS);
  const deadline = Date.now() + (FULL ? 1_800_000 : 180_000);
  while ((await jobsDone()) < TASKS + STALE || (await runsDone()) < RUNS) {
    if (Date.now() > deadline) break;
    await sleep(500);
  }
  workDone = true;
  await chaos;
  // Every node up again, so the final state is what the cluster settles on.
  for (const node of c.nodes) if (!node.daemon) await c.start(node.index);
  const workMs = Date.now() - started;

  // ── Tasks: every job succeeded exactly once; nothing queued, running, failed or dead. ──
  const byState = await pgQuery<{ kind: string; state: string; n: string }>(
    `SELECT kind, state, count(*) AS n FROM ${q('tasks')} GROUP BY kind, state ORDER BY 1, 2`,
  );
  const states = Object.fromEntries(byState.map((r) => [`${r.kind}:${r.state}`, Number(r.n)]));
  expect(states['job:succeeded']).toBe(TASKS + STALE);
  expect(Object.keys(states).filter((k) => !k.endsWith(':succeeded'))).toEqual([]);
  expect(submitted).toBe(TASKS);

  const outcomes = await pgQuery<{ outcome: string | null; n: string }>(
    `SELECT outcome, count(*) AS n FROM ${q('attempts')} GROUP BY outcome ORDER BY 1`,
  );
  // One accepted completion per task: exactly one task.succeeded event each, and the result
  // that was kept is never the stale worker's.
  const succeededTwice = await pgQuery(
    `SELECT task_id, count(*) AS n FROM ${q('events')} WHERE type = 'task.succeeded'
     GROUP BY task_id HAVING count(*) <> 1`,
  );
  expect(succeededTwice).toEqual([]);
  expect(
    await sqlCount(`SELECT count(*) AS n FROM ${q('events')} WHERE type = 'task.succeeded'`),
  ).toBe(TASKS + STALE + 3 * RUNS);
  expect(
    await sqlCount(`SELECT count(*) AS n FROM ${q('tasks')} WHERE result LIKE '%"stale"%'`),
  ).toBe(0);

  // ── Effects: each job's effect happened exactly once (no lease was stolen from a live worker). ──
  for (const w of workers) w.process.kill('SIGTERM');
  await Promise.all(workers.map((w) => w.line((l) => l.startsWith('summary '), 'summary', 60_000)));
  const effectsByTask = new Map<string, number>();
  for (let w = 0; w < WORKERS; w++) {
    const file = join(dir, `effects-${w}.tsv`);
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      const id = line.split('\t')[0]!;
      effectsByTask.set(id, (effectsByTask.get(id) ?? 0) + 1);
    }
  }
  const duplicated = [...effectsByTask].filter(([, n]) => n > 1);
  const lostLeases = workers.flatMap((w) => w.lines.filter((l) => l.startsWith('lost ')));
  const summaries = workers.map(
    (w) =>
      JSON.parse(w.lines.find((l) => l.startsWith('summary '))!.slice(8)) as {
        completed: number;
        leaseLost: number;
        dialed: number;
        nodes: number;
      },
  );
  expect(duplicated).toEqual([]);
  expect(effectsByTask.size).toBe(TASKS + STALE);
  // A heartbeat refused while the job ran would mean a live worker's lease was taken.
  expect(lostLeases.filter((l) => l.endsWith(' beat'))).toEqual([]);
  const acceptedByWorkers = summaries.reduce((n, s) => n + s.completed, 0);
  expect(acceptedByWorkers).toBeLessThanOrEqual(TASKS + STALE);

  // ── Stale completions: every one refused with LEASE_LOST, through whichever node. ──
  await stale.line((l) => l === 'done', 'the stale worker finished', 120_000);
  const staleLines = stale.lines.filter((l) => l.startsWith('stale '));
  expect(staleLines).toHaveLength(STALE);
  for (const line of staleLines) {
    const [, , , beat, complete] = line.split(' ');
    expect({ line, beat, complete }).toEqual({ line, beat: 'LEASE_LOST', complete: 'LEASE_LOST' });
  }

  // ── Runs: every run started once and completed; each step completed once. ──
  const runs = await pgQuery<{ workflow_name: string; state: string; terminal_reason: string }>(
    `SELECT workflow_name, state, terminal_reason FROM ${q('processes')}`,
  );
  expect(runs).toHaveLength(RUNS);
  expect(new Set(runs.map((r) => r.workflow_name)).size).toBe(RUNS);
  expect(runs.filter((r) => r.state !== 'terminated' || r.terminal_reason !== 'completed')).toEqual(
    [],
  );
  const stepsTwice = await pgQuery(
    `SELECT process_id, data::jsonb->>'step' AS step, count(*) AS n FROM ${q('events')}
     WHERE type = 'stage.completed' GROUP BY 1, 2 HAVING count(*) <> 1`,
  );
  expect(stepsTwice).toEqual([]);
  expect(
    await sqlCount(`SELECT count(*) AS n FROM ${q('events')} WHERE type = 'stage.completed'`),
  ).toBe(3 * RUNS);

  // ── Subscribers: every event of their session once, in order, across node deaths. ──
  for (const f of followers) {
    const last = await sqlCount(
      `SELECT last_seq AS n FROM ${q('sessions')} WHERE key = '${f.key}'`,
    );
    await waitFor(() => f.seqs.at(-1) === last, 120_000, `follower ${f.key} caught up to ${last}`);
    expect(f.seqs.length).toBe(last);
    for (let i = 0; i < f.seqs.length; i++)
      if (f.seqs[i] !== i + 1) expect.fail(`${f.key}: event #${i + 1} has seq ${f.seqs[i]}`);
    await f.sub.close();
  }

  // ── The ledger verifies (the CLI, straight on the PostgreSQL store). ──
  const verify = await c.cli(['ledger', 'verify', '--json']);
  expect(verify.code, verify.stderr).toBe(0);
  const ledger = json<{ ok: boolean; events: number }>(verify);
  expect(ledger.ok).toBe(true);

  expect(kills).toBeGreaterThanOrEqual(KILLS);
  expect(pgRestarts).toBe(PG_RESTARTS);
  // Clients really moved between nodes: the first kill took a follower's node.
  const nodesSeen = [
    ...summaries.map((s) => s.nodes),
    ...followers.map((f) => new Set(f.dialed).size),
  ];
  expect(Math.max(...nodesSeen)).toBeGreaterThan(1);

  const totalMs = Date.now() - started;
  const report = {
    nodes: NODES,
    tasks: TASKS,
    runs: RUNS,
    steps: 3 * RUNS,
    remote_workers: WORKERS,
    kills,
    pg_restarts: pgRestarts,
    pg_down_ms: pgDownMs,
    work_ms: workMs,
    total_ms: totalMs,
    tasks_per_s: Math.round((TASKS / workMs) * 1000),
    events: ledger.events,
    attempts: Object.fromEntries(outcomes.map((o) => [o.outcome ?? 'null', Number(o.n)])),
    stale_refused: staleLines.length,
    completions_answered_ok: acceptedByWorkers,
    settle_lease_lost: lostLeases.length,
    dialed: summaries.map((s) => s.dialed),
    nodes_seen: nodesSeen,
  };
  process.stdout.write(`multi-node chaos: ${JSON.stringify(report)}\n`);
  if (REPORT) appendFileSync(REPORT, `${JSON.stringify(report)}\n`);
}, 2_400_000);
