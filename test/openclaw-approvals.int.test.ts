/**
 * OpenClaw exec approvals with nobody to approve them (reference §7: "With no approver clients
 * connected, the request expires at once (`auto-expire:no-approver-clients`)"). Warden's default
 * keeps its durable approval (`exec_approvals.no_approver_clients: wait`): it waits and is
 * answered later from any face. `deny` opts into OpenClaw's behaviour, for gateway turns only,
 * and only while no OpenClaw client holding `operator.approvals` is connected.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.ts';
import {
  ASK_BEFORE_ECHO_POLICY,
  type Frame,
  type GatewayDaemon,
  prepareGatewayHome,
  RawGatewayClient,
  startGatewayDaemonOnHome,
} from './helpers/openclaw-gateway.ts';
import { removeTempDirs } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const CHAT_WORKFLOW = `name: chat
stages:
  - name: shell
    agent: { kind: shell, command: "echo approved" }
    default_next: end
`;
const READ_WRITE = ['operator.read', 'operator.write'];
const APPROVER = [...READ_WRITE, 'operator.approvals'];

let waiting: GatewayDaemon;
let denying: GatewayDaemon;
const clients: RawGatewayClient[] = [];

beforeAll(async () => {
  const files = { 'chat.yaml': CHAT_WORKFLOW, 'policy.yaml': ASK_BEFORE_ECHO_POLICY };
  const [waitHome, denyHome] = await Promise.all([
    prepareGatewayHome({ openclaw: ['workflow: chat.yaml'], files }),
    prepareGatewayHome({
      openclaw: ['workflow: chat.yaml', 'exec_approvals:', '  no_approver_clients: deny'],
      files,
    }),
  ]);
  [waiting, denying] = await Promise.all([
    startGatewayDaemonOnHome(waitHome),
    startGatewayDaemonOnHome(denyHome),
  ]);
}, 60_000);

afterAll(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all([waiting?.stop(), denying?.stop()]);
  removeTempDirs();
});

async function connect(daemon: GatewayDaemon, scopes: readonly string[]) {
  const client = await RawGatewayClient.connect(daemon.url, daemon.token, scopes);
  clients.push(client);
  return client;
}

const payloadOf = (f: Frame) => (f.payload ?? {}) as Record<string, unknown>;

async function send(c: RawGatewayClient, sessionKey: string): Promise<string> {
  const runId = randomUUID();
  await c.call('chat.send', { sessionKey, message: 'exec: please', idempotencyKey: runId });
  return runId;
}

async function chatEnd(c: RawGatewayClient, runId: string): Promise<Frame> {
  return c.waitFor(
    (f) =>
      f.event === 'chat' &&
      payloadOf(f).runId === runId &&
      ['final', 'aborted', 'error'].includes(payloadOf(f).state as string),
    15_000,
  );
}

interface InterruptRow {
  id: string;
  status: string;
  resolver: string | null;
  response: string | null;
}

/** The daemon's confirmation interrupts, oldest first. */
function interrupts(daemon: GatewayDaemon): InterruptRow[] {
  const db = new Database(join(daemon.home, 'warden.db'), { readonly: true });
  try {
    return db
      .prepare(
        `SELECT id, status, resolver, response FROM interrupts WHERE kind = 'confirmation'
         ORDER BY created_at`,
      )
      .all() as InterruptRow[];
  } finally {
    db.close();
  }
}

async function until<T>(read: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('exec approvals with no approver clients', () => {
  it('wait (the default): the approval waits, and `warden approve` lets the turn finish', async () => {
    const c = await connect(waiting, READ_WRITE);
    const runId = await send(c, 'agent:main:wait');
    const pending = await until(
      () => interrupts(waiting).find((i) => i.status === 'pending'),
      'a pending approval',
    );
    await sleep(300); // nothing denies it meanwhile
    expect(interrupts(waiting).find((i) => i.id === pending.id)?.status).toBe('pending');
    const cli = await runCli(['approve', pending.id], { home: waiting.home });
    expect(cli.code, cli.stderr).toBe(0);
    expect(payloadOf(await chatEnd(c, runId)).state).toBe('final');
  });

  it('deny: denied at once as auto-expire:no-approver-clients, and the turn ends as after a denial', async () => {
    const c = await connect(denying, READ_WRITE);
    const runId = await send(c, 'agent:main:deny');
    const end = payloadOf(await chatEnd(c, runId));
    expect(end.state).toBe('error');
    const [denied] = interrupts(denying);
    expect(denied).toMatchObject({
      status: 'resolved',
      resolver: 'openclaw:auto-expire:no-approver-clients',
    });
    expect(JSON.parse(denied!.response!)).toMatchObject({ approved: false, decision: 'deny' });
    // The plain client is not an approver: it never saw the request.
    expect(c.events('exec.approval.requested')).toEqual([]);
  });

  it('deny, with an approver connected: the approval waits for that approver', async () => {
    const approver = await connect(denying, APPROVER);
    const runId = await send(approver, 'agent:main:approver');
    const requested = await approver.waitFor(
      (f) =>
        f.event === 'exec.approval.requested' &&
        (payloadOf(f).request as { runId?: string }).runId === runId,
    );
    const id = payloadOf(requested).id as string;
    await sleep(300);
    expect(interrupts(denying).find((i) => i.id === id)?.status).toBe('pending');
    expect(await approver.call('exec.approval.resolve', { id, decision: 'allow-once' })).toEqual({
      ok: true,
    });
    expect(payloadOf(await chatEnd(approver, runId)).state).toBe('final');
  });
});
