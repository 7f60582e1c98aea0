/**
 * One process of a measured run, forked by run.ts: either the **producer** (creates the
 * system's schema, enqueues, watches the database until no job is unfinished) or a **worker
 * node** (connects, then consumes on `start`). One "node" = one worker process, as a deployed
 * worker would be. Commands arrive one at a time over IPC and each gets one answer; a worker
 * also pushes its handled count (`progress`) and, in the latency test, each job's start time.
 *
 * Times sent to the parent are `performance.timeOrigin + performance.now()` (ms since the
 * epoch, sub-millisecond), comparable across processes on one machine.
 */
import { epochNow, type NodeCommand, type NodeConfig, type NodeMessage } from './protocol.ts';
import { makePayload, type Payload } from './system.ts';
import { SYSTEMS } from './systems/index.ts';

const send = (m: NodeMessage) =>
  new Promise<void>((resolve) => {
    if (process.send) process.send(m, () => resolve());
    else resolve();
  });

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return String(error).slice(0, 500);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function producerRole(cfg: NodeConfig, system: (typeof SYSTEMS)[string]) {
  const producer = system.producer(cfg.ctx);
  // Payloads and batches exist before any clock starts; only the system's calls are timed.
  const batches: Payload[][] = [];
  for (let i = 0; i < cfg.n; i += cfg.ctx.batchSize)
    batches.push(
      Array.from({ length: Math.min(cfg.ctx.batchSize, cfg.n - i) }, (_, k) => makePayload(i + k)),
    );
  return async (c: NodeCommand): Promise<NodeMessage> => {
    switch (c.cmd) {
      case 'setup':
        await producer.setup();
        return { type: 'ok', at: epochNow() };
      case 'enqueueAll': {
        const t0 = epochNow();
        for (const batch of batches) await producer.enqueue(batch);
        return { type: 'enqueued', t0, t1: epochNow() };
      }
      case 'one': {
        const t0 = epochNow();
        await producer.enqueueOne(makePayload(c.i));
        return { type: 'enqueued', t0, t1: epochNow() };
      }
      case 'waitDone': {
        const deadline = performance.now() + c.timeoutMs;
        for (;;) {
          if ((await producer.unfinished()) === 0) return { type: 'done', at: epochNow() };
          if (performance.now() > deadline)
            throw new Error(`jobs still unfinished after ${c.timeoutMs} ms`);
          await sleep(2);
        }
      }
      case 'close':
        await producer.close();
        return { type: 'ok', at: epochNow() };
      default:
        throw new Error(`a producer cannot ${c.cmd}`);
    }
  };
}

async function workerRole(cfg: NodeConfig, system: (typeof SYSTEMS)[string]) {
  const node = system.worker(cfg.ctx);
  // Saturating per-id counts: the parent adds every node's counts up for the delivery check.
  const counts = new Uint8Array(cfg.n);
  let handled = 0;
  let reported = 0;
  let foreign = 0;
  const onJob = (p: Payload) => {
    const at = epochNow();
    const i = p?.i;
    if (!Number.isInteger(i) || i < 0 || i >= cfg.n) {
      foreign += 1;
      return;
    }
    if (counts[i]! < 255) counts[i] = counts[i]! + 1;
    handled += 1;
    if (cfg.latency) void send({ type: 'handled', i, at });
  };
  const ticker = setInterval(() => {
    if (handled !== reported) {
      reported = handled;
      void send({ type: 'progress', handled });
    }
  }, 10);
  ticker.unref();
  return async (c: NodeCommand): Promise<NodeMessage> => {
    switch (c.cmd) {
      case 'connect':
        await node.connect();
        return { type: 'ok', at: epochNow() };
      case 'start':
        await node.start(onJob);
        return { type: 'ok', at: epochNow() };
      case 'stop': {
        await node.stop();
        clearInterval(ticker);
        const anomalies = node.anomalies();
        if (foreign) anomalies.push(`${foreign} deliveries with an unknown id`);
        return {
          type: 'stopped',
          counts: Buffer.from(counts.buffer, counts.byteOffset, counts.byteLength).toString(
            'base64',
          ),
          anomalies,
        };
      }
      default:
        throw new Error(`a worker cannot ${c.cmd}`);
    }
  };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]!) as NodeConfig;
  const system = SYSTEMS[cfg.system];
  if (!system) throw new Error(`unknown system ${cfg.system}`);
  const handle =
    cfg.role === 'producer' ? await producerRole(cfg, system) : await workerRole(cfg, system);
  let chain = Promise.resolve();
  process.on('message', (c: NodeCommand) => {
    chain = chain.then(async () => {
      let answer: NodeMessage;
      try {
        answer = await handle(c);
      } catch (error) {
        answer = { type: 'error', error: describe(error) };
      }
      await send(answer);
      if (c.cmd === 'close' || c.cmd === 'stop') process.exit(0);
    });
  });
  await send({ type: 'ok', at: epochNow() });
}

main().catch(async (error: unknown) => {
  await send({ type: 'error', error: describe(error) });
  process.exit(1);
});
