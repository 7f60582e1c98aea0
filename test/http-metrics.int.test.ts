/**
 * `GET /metrics` on a real SQLite store, Kernel and JobQueue behind a real `node:http` server:
 * the scrape-time gauges follow submits, claims and settles; the event counters count this
 * process's commits (successes, failures, retries, dead letters, reclaimed leases); no label
 * carries an id; a failing store answers 503 and the server keeps serving.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { createMetrics, type WardenMetrics } from '../src/protocols/http/index.ts';
import { JobQueue, JobWorker, nonRetryable, reclaimExpiredLeases } from '../src/queue/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { startServer, type TestServer } from './helpers/http-server.ts';
import { wrapStore } from './helpers/store-spy.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Parses the Prometheus text format (0.0.4) into samples. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1) {
    throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples`);
  }
  return found[0]!.value;
}

interface Harness {
  store: Store;
  kernel: Kernel;
  queue: JobQueue;
  metrics: WardenMetrics;
  server: TestServer;
  workers: JobWorker[];
  reads: { countByState: number };
}

const harnesses: Harness[] = [];

afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    await h.server.close();
    for (const w of h.workers) await w.stop({ abort: true });
    h.metrics.close();
    h.kernel.close();
    await h.store.close();
  }
});
afterAll(removeTempDirs);

async function harness(): Promise<Harness> {
  const store = await openSqliteStore({ file: join(tempDir(), 'metrics.db') });
  const kernel = new Kernel({ store });
  const queue = new JobQueue({ store, lanes: { fast: {}, slow: { maxDepth: 100 } } });
  await queue.ready();
  const reads = { countByState: 0 };
  // Counts the scrape's reads; the kernel and queue use the real store.
  const spied = wrapStore(store, {
    countByState: () => {
      reads.countByState += 1;
      return store.countByState();
    },
  });
  const metrics = createMetrics({ kernel, store: spied, queue, eventLoopMonitoringPrecisionMs: 5 });
  const server = await startServer((req, res, url) =>
    url.pathname === '/metrics' ? metrics.handler(req, res) : void res.writeHead(404).end(),
  );
  const h: Harness = { store, kernel, queue, metrics, server, workers: [], reads };
  harnesses.push(h);
  return h;
}

async function scrape(h: Harness): Promise<Sample[]> {
  const response = await fetch(`${h.server.base}/metrics`);
  const text = await response.text();
  expect(response.status, text).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
  return parseExposition(text);
}

async function waitUntil(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const noBackoff = { baseMs: 0, maxMs: 0 };

describe('GET /metrics', () => {
  it('exports process metrics and zeroed Warden series before any work', async () => {
    const h = await harness();
    const s = await scrape(h);
    expect(value(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(s.some((x) => x.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(s.some((x) => x.name === 'nodejs_eventloop_lag_seconds')).toBe(true);
    for (const lane of ['fast', 'slow', h.kernel.agentLane]) {
      expect(value(s, 'warden_queue_depth', { lane })).toBe(0);
    }
    expect(value(s, 'warden_tasks', { state: 'queued' })).toBe(0);
    expect(value(s, 'warden_processes', { state: 'running' })).toBe(0);
    for (const name of [
      'warden_running_tasks',
      'warden_dlq_size',
      'warden_interrupts_pending',
      'warden_lease_expiries_total',
      'warden_task_retries_total',
      'warden_tasks_dead_total',
      'warden_tasks_succeeded_total',
      'warden_tasks_failed_total',
      'warden_acp_connections',
      'warden_acp_subscriptions',
      'warden_acp_backpressure_closes_total',
      'warden_event_fanout_lag_seconds_count',
    ]) {
      expect(value(s, name), name).toBe(0);
    }
    expect(value(s, 'warden_events_total', { type: 'task.queued' })).toBe(0);
    // One set of store reads per scrape, shared by every gauge.
    expect(h.reads.countByState).toBe(1);
  });

  it('follows submits, claims, reclaims and settles, with no id in any label', async () => {
    const h = await harness();
    const ids: string[] = [];
    const submit = async (name: string, lane: string, attempts = 5) => {
      const job = await h.queue.submit(
        name,
        { n: ids.length },
        { lane, attempts, backoff: noBackoff },
      );
      ids.push(job.id, job.task.session_id);
      return job;
    };
    await submit('ok', 'fast');
    await submit('ok', 'fast');
    await submit('bad', 'fast');
    await submit('flaky', 'slow', 2);
    const run = await h.kernel.startRun({
      workflow: buildWorkflow({
        name: 'metrics-test',
        model: 'scripted',
        stages: [{ name: 'one', agent: { kind: 'noop', output: {} } }],
      }),
    });
    ids.push(run.pid, run.session_id, run.trace_id);

    let s = await scrape(h);
    expect(value(s, 'warden_queue_depth', { lane: 'fast' })).toBe(3);
    expect(value(s, 'warden_queue_depth', { lane: 'slow' })).toBe(1);
    expect(value(s, 'warden_queue_depth', { lane: h.kernel.agentLane })).toBe(1);
    expect(value(s, 'warden_tasks', { state: 'queued' })).toBe(5);
    const processes = s.filter((x) => x.name === 'warden_processes');
    expect(processes.reduce((sum, x) => sum + x.value, 0)).toBe(1);
    expect(value(s, 'warden_events_total', { type: 'task.queued' })).toBe(5);
    expect(value(s, 'warden_events_total', { type: 'process.created' })).toBe(1);

    // A claim by a worker that goes silent: running, then reclaimed by the reaper.
    const [claim] = await h.store.claimTasks({
      lanes: ['fast'],
      kinds: ['job'],
      workerId: 'ghost',
      limit: 1,
      leaseMs: 1,
      now: Date.now(),
    });
    expect(claim).toBeDefined();
    s = await scrape(h);
    expect(value(s, 'warden_running_tasks')).toBe(1);
    expect(value(s, 'warden_tasks', { state: 'running' })).toBe(1);
    expect(value(s, 'warden_queue_depth', { lane: 'fast' })).toBe(2);
    await sleep(5); // the 1 ms lease runs out
    const reclaimed = await reclaimExpiredLeases(h.store, Date.now(), {
      isDeadOwner: () => false,
      agingMs: 0,
    });
    expect(reclaimed).toBe(1);
    s = await scrape(h);
    expect(value(s, 'warden_lease_expiries_total')).toBe(1);
    expect(value(s, 'warden_task_retries_total')).toBe(1);
    expect(value(s, 'warden_running_tasks')).toBe(0);

    const worker = new JobWorker({ queue: h.queue, lanes: ['fast', 'slow'], heartbeat: 'timer' });
    h.workers.push(worker);
    worker.handle('ok', () => 'done');
    worker.handle('bad', () => {
      throw nonRetryable('malformed input');
    });
    worker.handle('flaky', () => {
      throw new Error('flaky failure');
    });
    await worker.start();
    await waitUntil(async () => {
      const counts = (await h.store.countByState()).tasks;
      return counts.succeeded === 2 && counts.failed === 1 && counts.dead === 1;
    }, 'every job to settle');

    s = await scrape(h);
    expect(value(s, 'warden_tasks_succeeded_total')).toBe(2);
    expect(value(s, 'warden_tasks_failed_total')).toBe(1);
    expect(value(s, 'warden_tasks_dead_total')).toBe(1);
    expect(value(s, 'warden_task_retries_total')).toBe(2); // the reclaim and flaky's first try
    expect(value(s, 'warden_lease_expiries_total')).toBe(1);
    expect(value(s, 'warden_dlq_size')).toBe(1);
    expect(value(s, 'warden_tasks', { state: 'dead' })).toBe(1);
    expect(value(s, 'warden_tasks', { state: 'succeeded' })).toBe(2);
    expect(value(s, 'warden_queue_depth', { lane: 'fast' })).toBe(0);
    expect(value(s, 'warden_queue_depth', { lane: 'slow' })).toBe(0);
    expect(value(s, 'warden_events_total', { type: 'task.succeeded' })).toBe(2);
    expect(value(s, 'warden_events_total', { type: 'task.lease_expired' })).toBe(1);

    // Bounded cardinality: no label value is an id, and every label is a known kind.
    const idLike = /[a-z]+_[0-9A-Za-z]{20,}/;
    for (const sample of s) {
      for (const [label, v] of Object.entries(sample.labels)) {
        expect(idLike.test(v), `${sample.name}{${label}="${v}"}`).toBe(false);
        for (const id of ids) expect(v.includes(id), `${sample.name} carries ${id}`).toBe(false);
      }
      if (sample.name.startsWith('warden_')) {
        expect(
          Object.keys(sample.labels).every((l) => ['lane', 'state', 'type', 'le'].includes(l)),
          `${sample.name} ${JSON.stringify(sample.labels)}`,
        ).toBe(true);
      }
    }
  });

  it('exports what the ACP server records', async () => {
    const h = await harness();
    h.metrics.recordConnection(1);
    h.metrics.recordConnection(1);
    h.metrics.recordConnection(-1);
    h.metrics.recordSubscriptions(3);
    h.metrics.recordBackpressureClose();
    h.metrics.observeFanoutLag(0.002);
    h.metrics.observeFanoutLag(2);
    const s = await scrape(h);
    expect(value(s, 'warden_acp_connections')).toBe(1);
    expect(value(s, 'warden_acp_subscriptions')).toBe(3);
    expect(value(s, 'warden_acp_backpressure_closes_total')).toBe(1);
    expect(value(s, 'warden_event_fanout_lag_seconds_count')).toBe(2);
    expect(value(s, 'warden_event_fanout_lag_seconds_bucket', { le: '0.005' })).toBe(1);
    expect(value(s, 'warden_event_fanout_lag_seconds_bucket', { le: '+Inf' })).toBe(2);
  });

  it('answers 503 with one line when the store fails, and keeps serving', async () => {
    const h = await harness();
    const scrapes = await Promise.all([scrape(h), scrape(h)]);
    expect(scrapes.map((s) => value(s, 'warden_dlq_size'))).toEqual([0, 0]);
    await h.store.close();
    for (let i = 0; i < 2; i += 1) {
      const response = await fetch(`${h.server.base}/metrics`);
      const text = await response.text();
      expect(response.status).toBe(503);
      expect(text.trimEnd().split('\n')).toHaveLength(1);
      expect(text).toMatch(/^metrics unavailable: /);
    }
  });

  it('close() empties its own registry; a new instance counts from its start', async () => {
    const h = await harness();
    h.metrics.close();
    const again = createMetrics({ kernel: h.kernel, defaultMetrics: false });
    try {
      await h.queue.submit('ok', null, { lane: 'fast' });
      const text = await again.registry.metrics();
      const s = parseExposition(text);
      expect(value(s, 'warden_events_total', { type: 'task.queued' })).toBe(1);
      expect(value(s, 'warden_queue_depth', { lane: 'fast' })).toBe(1);
      expect(h.metrics.registry.getMetricsAsArray()).toHaveLength(0);
    } finally {
      again.close();
    }
  });
});
