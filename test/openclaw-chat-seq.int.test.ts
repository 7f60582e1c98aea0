/**
 * OpenClaw `chat`/`agent` payload `seq` counts a run's payloads from 1 by the event log, not by
 * what this daemon happened to broadcast: a client that connects while a run streams — after
 * nobody was listening for a while, or after a restart — sees the run's count go on where the
 * log says, and the final's seq is one more than the run's deltas.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import {
  type Frame,
  type GatewayDaemon,
  prepareGatewayHome,
  RawGatewayClient,
  startGatewayDaemonOnHome,
  streamingChatWorkflow,
} from './helpers/openclaw-gateway.ts';
import { removeTempDirs } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const CHUNK_MS = 60;
const CHAT_WORKFLOW = streamingChatWorkflow(CHUNK_MS);
const WORDS = 60; // about 3.6 s of streaming, deltas coalesced every 250 ms
const message = Array.from({ length: WORDS }, (_, i) => `w${i}`).join(' ');

let gw: GatewayDaemon | undefined;
const clients: RawGatewayClient[] = [];
afterAll(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await gw?.stop();
  removeTempDirs();
});

const payloadOf = (f: Frame) => (f.payload ?? {}) as Record<string, unknown>;
const chatOf = (c: RawGatewayClient, runId: string) =>
  c.events('chat').filter((f) => payloadOf(f).runId === runId);
const agentOf = (c: RawGatewayClient, runId: string) =>
  c.events('agent').filter((f) => payloadOf(f).runId === runId);

/** The run's `model.delta` events in the daemon's log. */
function deltasInLog(home: string, runId: string): number {
  const db = new Database(join(home, 'warden.db'), { readonly: true });
  try {
    const row = db
      .prepare(
        `SELECT count(*) AS n FROM events WHERE type = 'model.delta' AND process_id =
           (SELECT pid FROM process_rows WHERE json_extract(envelope, '$.metadata.openclaw.runId') = ?)`,
      )
      .get(runId) as { n: number };
    return row.n;
  } finally {
    db.close();
  }
}

describe('OpenClaw per-run payload seq', () => {
  it('a client that connects mid-run continues the run’s count from the log', async () => {
    const home = await prepareGatewayHome({
      openclaw: ['workflow: chat.yaml'],
      files: { 'chat.yaml': CHAT_WORKFLOW },
    });
    gw = await startGatewayDaemonOnHome(home);
    const first = await RawGatewayClient.connect(gw.url, gw.token, [
      'operator.read',
      'operator.write',
    ]);
    clients.push(first);
    const runId = randomUUID();
    await first.call('chat.send', {
      sessionKey: 'agent:main:seq',
      message,
      idempotencyKey: runId,
    });
    await first.waitFor(
      () => chatOf(first, runId).filter((f) => payloadOf(f).state === 'delta').length >= 2,
      15_000,
    );
    first.close();
    await first.closed;
    // Nobody listens while the run streams on.
    await sleep(800);
    const second = await RawGatewayClient.connect(gw.url, gw.token, ['operator.read']);
    clients.push(second);
    const final = await second.waitFor(
      (f) => f.event === 'chat' && payloadOf(f).runId === runId && payloadOf(f).state === 'final',
      20_000,
    );

    const before = chatOf(first, runId).map((f) => payloadOf(f).seq as number);
    const after = chatOf(second, runId).map((f) => payloadOf(f).seq as number);
    const total = deltasInLog(home, runId);
    // Deltas were committed while nobody listened, so the check below is not vacuous.
    expect(before.length + after.length - 1).toBeLessThan(total);
    expect(before).toEqual(before.map((_, i) => i + 1));
    expect(after).toEqual(after.map((_, i) => after[0]! + i));
    expect(after[0]).toBeGreaterThan(before.at(-1)! + 1);
    expect(payloadOf(final).seq).toBe(total + 1);
    // The agent stream the same way: lifecycle start, one per delta, lifecycle end.
    await second.waitFor(
      () =>
        agentOf(second, runId).some(
          (f) => (payloadOf(f).data as { phase?: string } | undefined)?.phase === 'end',
        ),
      5_000,
    );
    const agentAfter = agentOf(second, runId).map((f) => payloadOf(f).seq as number);
    expect(agentAfter).toEqual(agentAfter.map((_, i) => agentAfter[0]! + i));
    expect(agentAfter.at(-1)).toBe(total + 2);
  }, 60_000);
});
