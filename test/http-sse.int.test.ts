/**
 * `GET /events` (server-sent events) on a real SQLite store behind a real `node:http` server,
 * read by a real HTTP client: a replay of 20,000+ events runs into live events committed by this
 * process and by another OS process, and every event arrives exactly once, in order — also
 * after reconnecting with `Last-Event-ID` from random points. Errors before streaming (404,
 * 410 REPLAY_GAP, 400), heartbeats, listener cleanup, and a client that stops reading: it is
 * cut off with a `backpressure` frame and the server's buffer stays bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { get, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { IdGenerator, systemClock } from '../src/core/index.ts';
import { createSseHandler, type SseHandler, type SseOptions } from '../src/protocols/http/index.ts';
import {
  type EventRecord,
  openSqliteStore,
  SessionDirectory,
  type Store,
  type StoreOp,
} from '../src/store/index.ts';
import { startServer, type TestServer } from './helpers/http-server.ts';
import { wrapStore } from './helpers/store-spy.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const APPENDER = fileURLToPath(new URL('./helpers/event-appender.ts', import.meta.url));

// ---------------------------------------------------------------------------------------------
// An SSE client on node:http (it can stop reading, which fetch cannot do deterministically).

interface Frame {
  readonly id?: number;
  readonly event?: string;
  readonly data?: string;
  readonly comment?: string;
}

interface SseClient {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly frames: Frame[];
  /** Events (frames with an id), in arrival order. */
  readonly events: EventRecord[];
  readonly ended: Promise<void>;
  pause(): void;
  resume(): void;
  close(): void;
  waitFor(check: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

const clients: SseClient[] = [];

function connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      res.setEncoding('utf8');
      let buffer = '';
      let body = '';
      let endedFlag = false;
      const frames: Frame[] = [];
      const events: EventRecord[] = [];
      const ended = new Promise<void>((done) => {
        res.on('close', () => {
          endedFlag = true;
          done();
        });
      });
      res.on('error', () => {});
      res.on('data', (chunk: string) => {
        if (res.statusCode !== 200) {
          body += chunk;
          return;
        }
        buffer += chunk;
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const frame: { -readonly [K in keyof Frame]: Frame[K] } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) frame.comment = line.slice(1).trim();
            else if (line.startsWith('id: ')) frame.id = Number(line.slice(4));
            else if (line.startsWith('event: ')) frame.event = line.slice(7);
            else if (line.startsWith('data: ')) frame.data = line.slice(6);
            else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
          }
          frames.push(frame);
          if (frame.id !== undefined) events.push(JSON.parse(frame.data ?? 'null') as EventRecord);
        }
      });
      const client: SseClient = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        get body() {
          return body;
        },
        frames,
        events,
        ended,
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
        async waitFor(check, what, timeoutMs = 20_000) {
          const deadline = Date.now() + timeoutMs;
          while (!check()) {
            if (Date.now() > deadline || (endedFlag && !check())) {
              throw new Error(
                `${endedFlag ? 'stream ended' : 'timed out'} waiting for ${what} (${events.length} events, last ${events.at(-1)?.seq})`,
              );
            }
            await sleep(10);
          }
        },
      };
      clients.push(client);
      resolve(client);
    });
    req.on('error', reject);
  });
}

/** Non-200 answers: status and parsed JSON body. */
async function errorOf(url: string, headers: Record<string, string> = {}) {
  const client = await connect(url, headers);
  await client.ended;
  return {
    status: client.status,
    body: JSON.parse(client.body) as {
      error: { code: string; message: string; retryable: boolean; details?: unknown };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Harness

interface Harness {
  readonly file: string;
  readonly store: Store;
  readonly server: TestServer;
  /** Largest `res.writableLength` seen after any write of the handler. */
  readonly maxBuffered: () => number;
  /** Streams (handler calls) not finished yet. */
  readonly open: () => number;
  /** onCommit + watchChanges listeners attached now. */
  readonly listeners: () => number;
  readonly handler: SseHandler;
}

const harnesses: Harness[] = [];
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const child of children.splice(0)) await stopChild(child);
  for (const h of harnesses.splice(0)) {
    await h.server.close();
    await h.store.close();
  }
});
afterAll(removeTempDirs);

async function harness(options: Omit<SseOptions, 'store'> = {}): Promise<Harness> {
  const file = join(tempDir(), 'sse.db');
  const store = await openSqliteStore({ file });
  let listeners = 0;
  const counted =
    <A extends unknown[]>(attach: (...args: A) => () => void) =>
    (...args: A) => {
      const detach = attach(...args);
      listeners += 1;
      let done = false;
      return () => {
        if (!done) listeners -= 1;
        done = true;
        detach();
      };
    };
  const spied = wrapStore(store, {
    onCommit: counted((l: Parameters<Store['onCommit']>[0]) => store.onCommit(l)),
    watchChanges: counted((l: () => void) => store.watchChanges(l)),
  });
  const handler = createSseHandler({ store: spied, ...options });
  let maxBuffered = 0;
  let open = 0;
  const server = await startServer(async (req, res: ServerResponse, url) => {
    const write = res.write.bind(res) as (chunk: string) => boolean;
    res.write = ((chunk: string) => {
      const ok = write(chunk);
      maxBuffered = Math.max(maxBuffered, res.writableLength);
      return ok;
    }) as typeof res.write;
    open += 1;
    try {
      await handler(req, res, url);
    } finally {
      open -= 1;
    }
  });
  const h: Harness = {
    file,
    store,
    server,
    maxBuffered: () => maxBuffered,
    open: () => open,
    listeners: () => listeners,
    handler,
  };
  harnesses.push(h);
  return h;
}

async function sessions(store: Store, ...keys: string[]): Promise<string[]> {
  const directory = new SessionDirectory(store, new IdGenerator(systemClock), systemClock);
  const ids: string[] = [];
  for (const key of keys) ids.push((await directory.ensure(key)).id);
  return ids;
}

/** Appends `count` events to the session in commits of `batch`. */
async function append(
  store: Store,
  sessionId: string,
  count: number,
  data: unknown = {},
  batch = 500,
) {
  for (let done = 0; done < count; done += batch) {
    const ops: StoreOp[] = [];
    for (let i = done; i < Math.min(count, done + batch); i += 1) {
      ops.push({
        op: 'event',
        event: { session_id: sessionId, type: 'task.progress', trace_id: 'tr_sse', data },
      });
    }
    await store.commit(ops);
  }
}

function startAppender(db: string, sessionIds: readonly string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [APPENDER, db, ...sessionIds], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`appender exited early with ${String(code)}`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (chunk.includes('ready')) resolve(child);
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function lastSeq(store: Store, sessionId: string): Promise<number> {
  return (await store.getSession(sessionId))!.last_seq;
}

/** Every seq from `from` + 1 to `to`, once each, in order, all of `sessionId`. */
function expectExactlyOnce(
  events: readonly EventRecord[],
  sessionId: string,
  from: number,
  to: number,
) {
  expect(events.length, `events after ${from} up to ${to}`).toBe(to - from);
  events.forEach((event, i) => {
    if (event.seq !== from + 1 + i || event.session_id !== sessionId) {
      throw new Error(
        `event ${i}: seq ${event.seq} of ${event.session_id}, expected ${from + 1 + i}`,
      );
    }
  });
}

const url = (h: Harness, query: string) => `${h.server.base}/events?${query}`;

// ---------------------------------------------------------------------------------------------

describe('GET /events', () => {
  it('replays 20,000+ events, then streams live commits of this and another process, each once and in order', async () => {
    const lags: number[] = [];
    const h = await harness({ pageSize: 700, observeLag: (seconds) => lags.push(seconds) });
    const [target, other] = await sessions(h.store, 'sse:target', 'sse:other');
    await append(h.store, target!, 20_500);
    await append(h.store, other!, 50);
    // Another OS process appends to both sessions for the whole test (watchChanges path).
    await startAppender(h.file, [target!, other!]);

    const client = await connect(url(h, `session_id=${target}`));
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    // Meanwhile this process commits too (onCommit path), in batches that mix sessions.
    let stopLocal = false;
    const local = (async () => {
      let i = 0;
      while (!stopLocal) {
        await h.store.commit([
          {
            op: 'event',
            event: { session_id: target!, type: 'task.progress', trace_id: 'tr', data: { i } },
          },
          {
            op: 'event',
            event: { session_id: other!, type: 'task.progress', trace_id: 'tr', data: { i } },
          },
          {
            op: 'event',
            event: { session_id: target!, type: 'task.progress', trace_id: 'tr', data: { i } },
          },
        ]);
        i += 1;
        await sleep(2);
      }
    })();
    await client.waitFor(
      () => client.events.length > 20_500,
      'the replay to pass the stored events',
    );
    await sleep(300); // live traffic from both writers
    stopLocal = true;
    await local;
    await stopChild(children[0]!);
    const last = await lastSeq(h.store, target!);
    expect(last).toBeGreaterThan(20_600);
    await client.waitFor(() => client.events.at(-1)?.seq === last, `seq ${last}`);
    await sleep(100); // nothing more may arrive
    expectExactlyOnce(client.events, target!, 0, last);
    // The SSE id and event name are the event's seq and type.
    const idFrames = client.frames.filter((f) => f.id !== undefined);
    expect(idFrames.every((f, i) => f.id === i + 1 && f.event === client.events[i]!.type)).toBe(
      true,
    );
    expect(client.events[0]!.type).toBe('session.created');
    // Live deliveries of this process's commits were timed.
    expect(lags.length).toBeGreaterThan(0);
    expect(lags.every((l) => Number.isFinite(l) && l < 60)).toBe(true);
  });

  it('resumes from Last-Event-ID (or from_seq) at random points, exactly once, while events keep coming', async () => {
    const h = await harness({ pageSize: 300 });
    const [target] = await sessions(h.store, 'sse:resume');
    await append(h.store, target!, 3_000);
    await startAppender(h.file, [target!]);
    const received: EventRecord[] = [];
    let cursor = 0;
    for (let round = 0; round < 8; round += 1) {
      // Resume where the previous connection stopped (EventSource's own behaviour)…
      const client = await connect(
        url(h, `session_id=${target}&from_seq=0`),
        cursor === 0 ? {} : { 'Last-Event-ID': String(cursor) },
      );
      expect(client.status).toBe(200);
      const stopAt = cursor + 1 + Math.floor(Math.random() * 800);
      await client.waitFor(() => (client.events.at(-1)?.seq ?? cursor) >= stopAt, `seq ${stopAt}`);
      client.close();
      await client.ended;
      received.push(...client.events);
      cursor = client.events.at(-1)!.seq;
    }
    await stopChild(children[0]!);
    const last = await lastSeq(h.store, target!);
    const client = await connect(url(h, `session_id=${target}`), {
      'Last-Event-ID': String(cursor),
    });
    // The rounds may already have reached the last event (a slow appender): then none is due.
    await client.waitFor(() => (client.events.at(-1)?.seq ?? cursor) === last, `seq ${last}`);
    received.push(...client.events);
    expectExactlyOnce(received, target!, 0, last);

    // …and from random points with from_seq.
    for (let i = 0; i < 5; i += 1) {
      const from = Math.floor(Math.random() * last);
      const c = await connect(url(h, `session_id=${target}&from_seq=${from}`));
      await c.waitFor(() => c.events.at(-1)?.seq === last, `seq ${last} from ${from}`);
      expectExactlyOnce(c.events, target!, from, last);
      c.close();
    }
  });

  it('answers 404, 410 and 400 as JSON before streaming', async () => {
    const h = await harness();
    const [target, system] = await sessions(h.store, 'sse:gap', 'system');
    await append(h.store, target!, 150);

    const missing = await errorOf(url(h, 'session_id=ses_nope'));
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'NOT_FOUND', retryable: false });

    for (const query of [
      '',
      'session_id=',
      `session_id=${target}&from_seq=abc`,
      `session_id=${target}&from_seq=-1`,
      `session_id=${target}&from_seq=1.5`,
      `session_id=${target}&session_id=${target}`,
      `session_id=${target}&from_seq=100000`,
    ]) {
      const bad = await errorOf(url(h, query));
      expect(bad.status, query).toBe(400);
      expect(bad.body.error.code, query).toBe('INVALID_PARAMS');
    }
    const badHeader = await errorOf(url(h, `session_id=${target}`), { 'Last-Event-ID': 'x' });
    expect(badHeader.status).toBe(400);
    expect(badHeader.body.error.message).toContain('Last-Event-ID');

    // Retention prunes a prefix of the log: older cursors are gone (410), newer ones work.
    const pruned = await h.store.prune({
      policy: { finishedBefore: 0, deadBefore: 0, eventsBefore: Date.now() + 1_000 },
      limit: 100,
      event: { session_id: system!, trace_id: 'tr_prune' },
    });
    expect(pruned.events).toBeGreaterThan(0);
    const oldest = (await h.store.getSession(target!))!.pruned_seq! + 1;
    expect(oldest).toBeGreaterThan(5);
    const gap = await errorOf(url(h, `session_id=${target}&from_seq=5`));
    expect(gap.status).toBe(410);
    expect(gap.body.error).toMatchObject({ code: 'REPLAY_GAP', details: { oldest_seq: oldest } });
    const gapHeader = await errorOf(url(h, `session_id=${target}`), { 'Last-Event-ID': '3' });
    expect(gapHeader.status).toBe(410);

    // Without a cursor the stream starts at the oldest event kept.
    const fromOldest = await connect(url(h, `session_id=${target}`));
    expect(fromOldest.status).toBe(200);
    await fromOldest.waitFor(() => fromOldest.events.at(-1)?.seq === 151, 'seq 151');
    expectExactlyOnce(fromOldest.events, target!, oldest - 1, 151); // session.created + 150
    expect(h.open()).toBe(1); // the error answers ended their requests
  });

  it('sends heartbeats and detaches every listener when the client goes away', async () => {
    const h = await harness({ heartbeatMs: 20 });
    const [target] = await sessions(h.store, 'sse:idle');
    const a = await connect(url(h, `session_id=${target}`));
    const b = await connect(url(h, `session_id=${target}`));
    await a.waitFor(() => a.frames.filter((f) => f.comment === 'ping').length >= 3, 'three pings');
    expect(h.listeners()).toBe(4);
    expect(h.open()).toBe(2);
    a.close();
    await a.ended;
    await b.waitFor(() => h.listeners() === 2 && h.open() === 1, 'the first stream to detach');
    await append(h.store, target!, 3);
    await b.waitFor(() => b.events.length === 4, 'session.created and three events');
    b.close();
    await b.waitFor(() => h.listeners() === 0 && h.open() === 0, 'every stream to detach');
  });

  it('closeAll() ends every open stream with a shutdown frame', async () => {
    const h = await harness();
    const [target] = await sessions(h.store, 'sse:shutdown');
    const a = await connect(url(h, `session_id=${target}`));
    const b = await connect(url(h, `session_id=${target}&from_seq=1`));
    await a.waitFor(() => a.events.length === 1, 'session.created');
    h.handler.closeAll('test shutdown');
    await Promise.all([a.ended, b.ended]);
    for (const c of [a, b]) {
      expect(c.frames.at(-1)).toMatchObject({
        event: 'shutdown',
        data: '{"reason":"test shutdown"}',
      });
    }
    expect(h.listeners()).toBe(0);
    expect(h.open()).toBe(0);
  });

  it('cuts off a live client that stops reading, with a backpressure frame; the buffer stays bounded', async () => {
    const highWaterBytes = 256 * 1024;
    const h = await harness({ highWaterBytes, pageSize: 50 });
    const [target] = await sessions(h.store, 'sse:slow');
    const client = await connect(url(h, `session_id=${target}`));
    await client.waitFor(() => client.events.length === 1, 'session.created');
    client.pause();
    const blob = 'x'.repeat(4_000);
    // Live events until the server gives up on the client (loopback buffers hold a few MB).
    let appended = 0;
    while (h.open() > 0) {
      await append(h.store, target!, 50, { blob }, 50);
      appended += 50;
      if (appended > 40_000) throw new Error('the server never cut the client off');
    }
    const frame = 4_000 + 600; // one event's frame, with room for its envelope
    expect(h.maxBuffered()).toBeLessThanOrEqual(highWaterBytes + frame);
    client.resume();
    await client.ended;
    const last = client.frames.at(-1)!;
    expect(last.event).toBe('backpressure');
    const info = JSON.parse(last.data!) as Record<string, unknown>;
    expect(info).toMatchObject({
      high_water_bytes: highWaterBytes,
      last_seq: client.events.at(-1)!.seq,
    });
    expect(info.buffered_bytes as number).toBeGreaterThan(highWaterBytes);
    expect(h.listeners()).toBe(0);
    // It resumes where it was cut off, and gets the rest exactly once.
    const seen = client.events;
    const again = await connect(url(h, `session_id=${target}`), {
      'Last-Event-ID': String(seen.at(-1)!.seq),
    });
    const last2 = await lastSeq(h.store, target!);
    await again.waitFor(() => again.events.at(-1)?.seq === last2, `seq ${last2}`);
    expectExactlyOnce([...seen, ...again.events], target!, 0, last2);
  });

  it('cuts off a client that stops reading during the replay once a drain does not come', async () => {
    const h = await harness({ pageSize: 40, drainTimeoutMs: 300 });
    const [target] = await sessions(h.store, 'sse:stall');
    await append(h.store, target!, 4_000, { blob: 'y'.repeat(4_000) }, 200);
    const client = await connect(url(h, `session_id=${target}`));
    client.pause();
    await client.waitFor(() => h.open() === 0, 'the server to end the stream');
    // It never buffered more than about one page: the replay waits for the socket to drain.
    expect(h.maxBuffered()).toBeLessThan(40 * 4_700 + 64 * 1024);
    client.resume();
    await client.ended;
    expect(client.frames.at(-1)!.event).toBe('backpressure');
    expect(client.events.length).toBeLessThan(4_000);
    expectExactlyOnce(client.events, target!, 0, client.events.at(-1)!.seq);
  });
});
