/**
 * Replay without gaps: a subscriber reading a session of ≥ 100,000 events has its socket killed
 * at 20+ random points while events are still being written — by another process (read by the
 * daemon from the database) and through the daemon itself (its in-memory fast path). After each
 * reconnect it subscribes from its last seq; in the end it has every event exactly once, in order.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';

import { runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { connectRaw } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const PRODUCER = fileURLToPath(new URL('./helpers/event-producer.ts', import.meta.url));
const EXTERNAL_EVENTS = 100_000;
const SUBMITS = 500;

let home: string;
let daemon: DaemonProcess;

beforeAll(async () => {
  home = tempDir('warden-resume-');
  await runCli(['init'], { home });
  daemon = await startDaemon(home);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  removeTempDirs();
});

/** Reads from `fromSeq` until `stopAfter` events arrived (then kills the socket) or `until` is reached. */
function readSome(
  sessionId: string,
  fromSeq: number,
  stopAfter: number,
  until: () => boolean,
  onEvent: (seq: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(daemon.acpUrl, {
      headers: { authorization: `Bearer ${daemon.token}` },
    });
    let got = 0;
    const finish = () => {
      ws.terminate(); // a killed socket, not a polite close
      resolve();
    };
    ws.on('open', () => {
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'system.hello',
          params: { protocol: { min: 1, max: 1 } },
        }),
      );
      ws.send(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 2,
          method: 'events.subscribe',
          params: { session_id: sessionId, from_seq: fromSeq },
        }),
      );
    });
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as {
        id?: number;
        method?: string;
        error?: unknown;
        params?: { event: { seq: number } };
      };
      if (frame.error) return reject(new Error(JSON.stringify(frame.error)));
      if (frame.method !== 'events.event') return;
      onEvent(frame.params!.event.seq);
      got += 1;
      if (got >= stopAfter || until()) finish();
    });
    ws.on('error', reject);
  });
}

it('delivers every event exactly once, in order, across 20+ killed sockets', async () => {
  const admin = await connectRaw(daemon.acpUrl, daemon.token);
  const session = (await admin.call('session.create', { key: 'firehose' })).result!.session as {
    id: string;
  };
  const producer = spawn(
    process.execPath,
    [PRODUCER, join(home, 'warden.db'), session.id, String(EXTERNAL_EVENTS), '200'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const produced = new Promise<void>((resolve, reject) => {
    producer.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`producer exited ${code}`)),
    );
  });
  // Meanwhile the daemon itself writes to the same session (its in-memory fast path).
  const submitting = (async () => {
    for (let i = 0; i < SUBMITS; i++) {
      const r = await admin.call('task.submit', {
        name: 'tick',
        lane: 'agents',
        session_key: 'firehose',
        payload: { i },
      });
      if (r.error) throw new Error(JSON.stringify(r.error));
    }
  })();
  let producing = true;
  void Promise.all([produced, submitting]).then(() => (producing = false));

  const seqs: number[] = [];
  let last = 0;
  const expectedTotal = 1 + EXTERNAL_EVENTS + SUBMITS; // session.created + both writers
  let kills = 0;
  while (last < expectedTotal) {
    const stopAfter =
      producing || kills < 20 ? 1 + Math.floor(Math.random() * 6_000) : Number.MAX_SAFE_INTEGER;
    await readSome(
      session.id,
      last,
      stopAfter,
      () => last >= expectedTotal,
      (seq) => {
        seqs.push(seq);
        last = seq;
      },
    );
    kills += 1;
  }
  await Promise.all([produced, submitting]);
  expect(kills).toBeGreaterThanOrEqual(20);
  expect(seqs.length).toBe(expectedTotal);
  for (let i = 0; i < seqs.length; i++)
    if (seqs[i] !== i + 1) expect.fail(`event ${i} has seq ${seqs[i]}`);
  const history = (
    await admin.call('session.history', { session_id: session.id, from_seq: expectedTotal - 1 })
  ).result!;
  expect(history.last_seq).toBe(expectedTotal);
  admin.close();
}, 300_000);
