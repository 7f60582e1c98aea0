/**
 * The `warden/client` against a fake ACP server (test/helpers/fake-acp-server.ts) that follows
 * docs/protocol/acp.md: real sockets, real reconnects. Tests against the real daemon come with
 * it.
 */
import { createServer } from 'node:net';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  type EventRecord,
  runRemoteWorker,
  WardenClient,
  type WardenClientOptions,
  type WardenError,
} from '../src/client/index.ts';
import { FakeAcpServer } from './helpers/fake-acp-server.ts';
import { rejection, sleep } from './helpers/wait.ts';

let server: FakeAcpServer;
const clients: WardenClient[] = [];

beforeEach(async () => {
  server = await FakeAcpServer.start({ allowedOrigins: ['https://ok.example'] });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server.close();
});

async function connect(options: Partial<WardenClientOptions> = {}): Promise<WardenClient> {
  const client = await WardenClient.connect({
    url: server.url,
    token: server.token,
    client: { name: 'client-test', version: '1.0.0' },
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    ...options,
  });
  clients.push(client);
  return client;
}

/** Waits for `condition` with a deadline (no fixed sleeps in assertions). */
async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('connecting', () => {
  it('sends the token in the Authorization header only, and says hello first', async () => {
    const client = await connect();
    expect(server.upgrades).toHaveLength(1);
    expect(server.upgrades[0]!.url).toBe('/acp');
    expect(server.upgrades[0]!.headers.authorization).toBe(`Bearer ${server.token}`);
    expect(server.upgrades[0]!.url).not.toContain(server.token);
    expect(server.calls[0]).toMatchObject({
      method: 'system.hello',
      params: { protocol: { min: 1, max: 1 }, client: { name: 'client-test', version: '1.0.0' } },
    });
    expect(client.hello.protocol).toBe(1);
    expect(client.hello.scopes).toEqual(['admin']);
    expect((await client.system.ping()).now).toBeGreaterThan(0);
  });

  it('refuses a URL that carries a token, before opening anything', async () => {
    for (const query of ['?token=abc', '?access_token=abc', '?auth=abc']) {
      const error = await rejection(connect({ url: `${server.url}${query}` }));
      expect(error.code).toBe('INVALID_PARAMS');
      expect(error.message).toContain('Authorization header');
      expect(error.message).not.toContain('abc');
    }
    expect(server.upgrades).toHaveLength(0);
  });

  it('adds /acp to a bare URL and accepts http://', async () => {
    const bare = server.url.replace('ws://', 'http://').replace('/acp', '');
    await connect({ url: bare });
    expect(server.upgrades[0]!.url).toBe('/acp');
  });

  it('maps HTTP 401 and 403 at the upgrade to UNAUTHORIZED and FORBIDDEN', async () => {
    const unauthorized = await rejection(connect({ token: 'wrong' }));
    expect(unauthorized.code).toBe('UNAUTHORIZED');
    expect(unauthorized.retryable).toBe(false);
    expect(unauthorized.message).toMatch(/HTTP 401.*auth\.token/);
    const forbidden = await rejection(connect({ origin: 'https://evil.example' }));
    expect(forbidden.code).toBe('FORBIDDEN');
    expect(forbidden.message).toContain('allowed_origins');
    await connect({ origin: 'https://ok.example' });
  });

  it('maps a refused connection to DAEMON_UNREACHABLE', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const error = await rejection(connect({ url: `ws://127.0.0.1:${port}/acp` }));
    expect(error.code).toBe('DAEMON_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('warden serve');
  });

  it('fails with PROTOCOL_MISMATCH when no version is shared', async () => {
    const error = await rejection(connect({ protocol: { min: 2, max: 3 } }));
    expect(error.code).toBe('PROTOCOL_MISMATCH');
    expect(error.details).toEqual({ server: { min: 1, max: 1 } });
  });
});

describe('calls', () => {
  it('rebuilds a WardenError from error.data', async () => {
    const client = await connect();
    const notFound = await rejection(client.sessions.get({ session_id: 'ses_nope' }));
    expect(notFound.code).toBe('NOT_FOUND');
    expect(notFound.message).toBe("session 'ses_nope' does not exist");
    expect(notFound.details).toEqual({ what: 'session', id: 'ses_nope' });
    server.fail('task.submit', 'QUEUE_FULL', 'lane default is full', { lane: 'default' }, 1500);
    const full = await rejection(client.tasks.submit({ name: 'x' }));
    expect(full.code).toBe('QUEUE_FULL');
    expect(full.retryable).toBe(true);
    expect(full.retryAfterMs).toBe(1500);
    expect(full.details).toEqual({ lane: 'default' });
  });

  it('times out a call (TIMEOUT) and keeps the connection usable', async () => {
    const client = await connect();
    server.delays.set('system.status', 2_000);
    const error = await rejection(client.system.status({ timeoutMs: 100 }));
    expect(error.code).toBe('TIMEOUT');
    expect(error.retryable).toBe(true);
    expect((await client.system.ping()).now).toBeGreaterThan(0);
  });

  it('cancels a call by its signal (CANCELED)', async () => {
    const client = await connect();
    server.delays.set('system.status', 2_000);
    const controller = new AbortController();
    const call = client.system.status({ signal: controller.signal });
    controller.abort();
    expect((await rejection(call)).code).toBe('CANCELED');
  });

  it('rejects in-flight calls with DAEMON_UNREACHABLE when the socket drops, then reconnects', async () => {
    const client = await connect();
    const reconnected = new Promise((resolve) => client.once('reconnect', resolve));
    server.delays.set('system.status', 5_000);
    const inFlight = client.system.status();
    await until(() => server.calls.some((c) => c.method === 'system.status'), 'the call');
    server.killAll();
    const error = await rejection(inFlight);
    expect(error.code).toBe('DAEMON_UNREACHABLE');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('may or may not have taken effect');
    await reconnected;
    expect((await client.system.ping()).now).toBeGreaterThan(0);
    // The new connection said hello before anything else.
    const second = server.calls.filter((c) => c.conn === 2);
    expect(second[0]!.method).toBe('system.hello');
  });

  it('emits backpressure and shutdown notices, and reconnects after 1013 and 1001', async () => {
    const client = await connect();
    const seen: string[] = [];
    client.on('backpressure', () => seen.push('backpressure'));
    client.on('shutdown', () => seen.push('shutdown'));
    client.on('disconnect', ({ code }) => seen.push(`close ${code}`));
    client.on('reconnect', () => seen.push('reconnect'));
    server.backpressureAll();
    await until(() => seen.includes('reconnect'), 'the first reconnect');
    server.shutdownAll();
    await until(() => seen.filter((s) => s === 'reconnect').length === 2, 'the second reconnect');
    expect(seen).toEqual([
      'backpressure',
      'close 1013',
      'reconnect',
      'shutdown',
      'close 1001',
      'reconnect',
    ]);
  });

  it('closes for good when a reconnect is refused with 401', async () => {
    const client = await connect();
    const closed = new Promise<WardenError | undefined>((resolve) =>
      client.once('closed', resolve),
    );
    (server as { token: string }).token = 'rotated';
    server.killAll();
    const error = await closed;
    expect(error?.code).toBe('UNAUTHORIZED');
    expect(client.closed).toBe(true);
    expect((await rejection(client.system.ping())).code).toBe('UNAUTHORIZED');
  });
});

describe('subscriptions', () => {
  it('delivers 5,000 events exactly once, in order, across ≥ 10 connection kills', async () => {
    await server.close();
    server = await FakeAcpServer.start({ eventsBeforeAnswer: true });
    const client = await connect();
    let disconnects = 0;
    let connected = true;
    client.on('disconnect', () => {
      disconnects++;
      connected = false;
    });
    client.on('reconnect', () => (connected = true));
    const seqs: number[] = [];
    const errors: WardenError[] = [];
    const sub = await client.subscribe('ses_a', {
      onEvent: (e) => seqs.push(e.seq),
      onError: (e) => errors.push(e),
    });
    const total = 5_000;
    let appended = 0;
    let kills = 0;
    while (appended < total) {
      const n = Math.min(total - appended, 1 + Math.floor(Math.random() * 120));
      server.append('ses_a', n);
      appended += n;
      if (Math.random() < 0.15 || (kills < 12 && appended > (kills + 1) * 350)) {
        // Kill an established connection (killing one mid-handshake is no disconnect).
        await until(() => connected && server.openConnections > 0, 'a connection to kill');
        const how = kills % 6;
        if (how === 4) server.backpressureAll();
        else if (how === 5) server.shutdownAll();
        else server.killAll();
        kills++;
      }
      await sleep(Math.random() < 0.5 ? 0 : 3);
    }
    await until(() => sub.lastSeq === total, `lastSeq ${total} (at ${sub.lastSeq})`, 30_000);
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(disconnects).toBeGreaterThanOrEqual(10);
    expect(errors).toEqual([]);
    expect(seqs).toHaveLength(total);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it('is an async iterable, and resubscribes from lastSeq when a seq is skipped', async () => {
    const client = await connect();
    server.append('ses_b', 5);
    const sub = await client.subscribe('ses_b', { fromSeq: 2 });
    server.skipOneEvent();
    server.append('ses_b', 10);
    const got: EventRecord[] = [];
    for await (const event of sub) {
      got.push(event);
      if (event.seq === 15) break; // return() closes the subscription
    }
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: 13 }, (_, i) => i + 3));
    expect(sub.closed).toBe(true);
    const subscribes = server.calls.filter((c) => c.method === 'events.subscribe');
    expect(subscribes.length).toBeGreaterThanOrEqual(2);
    expect(server.calls.some((c) => c.method === 'events.unsubscribe')).toBe(true);
  });

  it('reports REPLAY_GAP to onError when the resume point was pruned, and does not retry', async () => {
    const client = await connect();
    const errors: WardenError[] = [];
    server.append('ses_c', 10);
    const sub = await client.subscribe('ses_c', {
      onEvent: () => {},
      onError: (e) => errors.push(e),
    });
    await until(() => sub.lastSeq === 10, 'the first 10 events');
    // All in one tick: the client cannot reconnect in between.
    server.killAll();
    server.append('ses_c', 90);
    server.prune('ses_c', 50);
    await until(() => errors.length > 0, 'onError');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('REPLAY_GAP');
    expect(errors[0]!.details).toMatchObject({ oldest_seq: 51 });
    expect(sub.closed).toBe(true);
    expect(sub.lastSeq).toBe(10);
    await client.system.ping(); // reconnected, and did not subscribe again
    await sleep(50);
    const resumes = server.calls.filter((c) => c.method === 'events.subscribe' && c.conn > 1);
    expect(resumes).toHaveLength(1);
  });

  it('rejects subscribe() with REPLAY_GAP for a pruned starting point', async () => {
    const client = await connect();
    server.append('ses_d', 20);
    server.prune('ses_d', 10);
    const error = await rejection(client.subscribe('ses_d', { fromSeq: 5 }));
    expect(error.code).toBe('REPLAY_GAP');
    // From 0, everything still kept: the first event is 11, accepted despite the pruned start.
    const sub = await client.subscribe('ses_d', {});
    const first = await sub[Symbol.asyncIterator]().next();
    expect((first.value as EventRecord).seq).toBe(11);
    await sub.close();
  });
});

describe('remote worker', () => {
  it('claims, heartbeats and completes with the attempt token; an unknown job fails, not retryable', async () => {
    const client = await connect();
    const controller = new AbortController();
    const done = server.submit('double', { n: 21 }, 'remote');
    const unknown = server.submit('nobody-handles-this', {}, 'remote');
    const summary = runRemoteWorker({
      client,
      lanes: ['remote'],
      concurrency: 2,
      leaseMs: 300,
      waitMs: 200,
      signal: controller.signal,
      handlers: {
        double: async (job) => {
          await job.progress({ step: 1 });
          // Work long enough for several heartbeats (every leaseMs / 3).
          await until(() => server.tasks.get(job.id)!.heartbeats >= 2, 'heartbeats');
          return { doubled: (job.payload as { n: number }).n * 2, attempt: job.attempt };
        },
      },
    });
    await until(
      () => done.state === 'succeeded' && unknown.state === 'failed',
      'both tasks settled',
    );
    controller.abort();
    expect(await summary).toMatchObject({ claimed: 2, completed: 1, failed: 1, leaseLost: 0 });
    expect(done.result).toEqual({ doubled: 42, attempt: 1 });
    expect(done.progress).toEqual([{ step: 1 }]);
    expect(done.heartbeats).toBeGreaterThanOrEqual(2);
    expect(unknown.last_error).toMatchObject({ code: 'NOT_FOUND', retryable: false });
    const claims = server.calls.filter((c) => c.method === 'task.claim');
    expect(claims[0]!.params).toMatchObject({
      lanes: ['remote'],
      limit: 2,
      lease_ms: 300,
      wait_ms: 200,
    });
  });

  it('aborts the handler on LEASE_LOST and drops its result; the next attempt settles', async () => {
    const client = await connect();
    const controller = new AbortController();
    const task = server.submit('long', {}, 'remote');
    let reason: unknown;
    const summary = runRemoteWorker({
      client,
      lanes: ['remote'],
      leaseMs: 150,
      waitMs: 100,
      signal: controller.signal,
      handlers: {
        long: (job) =>
          job.attempt > 1
            ? `attempt ${job.attempt}`
            : new Promise((resolve) => {
                job.signal.addEventListener('abort', () => {
                  reason = job.signal.reason;
                  resolve('too late');
                });
              }),
      },
    });
    await until(() => task.state === 'running', 'the claim');
    server.loseLease(task.id); // as a lease expiry: the task is queued again
    await until(() => task.state === 'succeeded', 'the second attempt');
    controller.abort();
    expect(await summary).toMatchObject({ claimed: 2, completed: 1, leaseLost: 1 });
    expect((reason as WardenError).code).toBe('LEASE_LOST');
    expect(task.result).toBe('attempt 2');
    expect(server.calls.filter((c) => c.method === 'task.complete')).toHaveLength(1);
  });

  it('survives a reconnect: heartbeats resume and the attempt completes', async () => {
    const client = await connect();
    const controller = new AbortController();
    const task = server.submit('slow', {}, 'remote');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const summary = runRemoteWorker({
      client,
      lanes: ['remote'],
      leaseMs: 300,
      waitMs: 100,
      signal: controller.signal,
      handlers: { slow: async () => (await gate, 'ok') },
    });
    await until(() => task.heartbeats >= 1, 'a heartbeat');
    server.killAll();
    const before = task.heartbeats;
    await until(() => task.heartbeats >= before + 2, 'heartbeats after the reconnect');
    release();
    await until(() => task.state === 'succeeded', 'completion');
    controller.abort();
    expect(await summary).toMatchObject({ completed: 1, leaseLost: 0 });
    expect(task.result).toBe('ok');
  });

  it('stops gracefully: finishes running handlers and releases claims that arrive after the stop', async () => {
    const client = await connect();
    const controller = new AbortController();
    const running = server.submit('work', {}, 'remote');
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    const summary = runRemoteWorker({
      client,
      lanes: ['remote'],
      concurrency: 2,
      leaseMs: 1_000,
      waitMs: 5_000,
      signal: controller.signal,
      handlers: { work: async () => (await gate, 'finished') },
    });
    await until(() => running.state === 'running' && server.parkedClaims === 1, 'a parked claim');
    controller.abort();
    const late = server.submit('work', {}, 'remote'); // answers the parked long-poll
    finish();
    expect(await summary).toMatchObject({ claimed: 2, completed: 1, released: 1 });
    expect(running.state).toBe('succeeded');
    expect(late.state).toBe('queued');
    expect(late.attempts).toBe(0);
    expect(server.calls.filter((c) => c.method === 'task.release')).toHaveLength(1);
  });
});
