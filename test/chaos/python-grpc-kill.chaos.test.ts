/**
 * The daemon SIGKILLed under the Python gRPC client (examples/clients/python-grpc in reconnect
 * mode) in the middle of a 6-stage pipeline, then restarted on the same gRPC port. The client
 * retries through the outage on its own and the run finishes COMPLETED with every stage
 * committed exactly once (one `stage.started`, one `stage.completed` per stage; 6 hops, 6 LLM
 * calls), and the ledger verifies. Two moments to die at:
 *
 * - while an agent runs: its report fails UNAVAILABLE until the daemon is back, then lands on
 *   the step the client still holds (its lease survives the restart);
 * - after a report was committed but before its reply reached the client (a relay in front of
 *   the daemon swallows the reply): the client retries the report, gets FAILED_PRECONDITION
 *   (the step is no longer outstanding), takes that as "already committed" and goes on.
 */
import { writeFileSync } from 'node:fs';
import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { WardenClient } from '../../src/client/index.ts';
import { runCli } from '../helpers/cli.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon.ts';
import {
  generateClient,
  perStage,
  type PipelineProcess,
  requirePythonGrpc,
  runOf,
  startPipeline,
} from '../helpers/python-grpc.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

const STAGES = ['s1', 's2', 's3', 's4', 's5', 's6'];
const ONCE = Object.fromEntries(STAGES.map((s) => [s, 1]));

let home: string;
let gen: string;
let grpcPort: number;
let daemon: DaemonProcess;
let relay: Relay;
const clients: PipelineProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A TCP relay in front of the daemon's gRPC port. `dropReplies` swallows everything the daemon
 * sends (the client's requests still go through); `cut` drops every connection.
 */
class Relay {
  dropReplies = false;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(upstreamPort: number) {
    this.#server = createServer((downstream) => {
      const upstream = connectTcp(upstreamPort, '127.0.0.1');
      for (const s of [downstream, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => {
          this.#sockets.delete(s);
          downstream.destroy();
          upstream.destroy();
        });
        s.on('error', () => undefined); // a daemon that is down, a reset: the close handles it
      }
      downstream.on('data', (d: Buffer) => upstream.write(d));
      upstream.on('data', (d: Buffer) => {
        if (!this.dropReplies) downstream.write(d);
      });
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.#server.listen(0, '127.0.0.1', () =>
        resolve((this.#server.address() as { port: number }).port),
      ),
    );
  }

  cut(): void {
    for (const s of this.#sockets) s.destroy();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

beforeAll(async () => {
  requirePythonGrpc();
  gen = tempDir('warden-pygrpc-chaos-gen-');
  generateClient(gen);
  home = tempDir('warden-pygrpc-chaos-');
  const init = await runCli(['init'], { home });
  expect(init.code, init.stderr).toBe(0);
  // A fixed gRPC port: the client reconnects to the same address after the restart.
  grpcPort = await freePort();
  writeFileSync(
    join(home, 'config.yaml'),
    `security:\n  watch_policy: false\nserver:\n  grpc:\n    listen: 127.0.0.1:${String(grpcPort)}\n    anonymous: jeeves-client\n`,
  );
  daemon = await startDaemon(home);
  relay = new Relay(grpcPort);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.child.kill('SIGKILL');
  await relay?.close();
  await daemon?.stop('SIGKILL');
  removeTempDirs();
});

function chainClient(address: string, processId: string): PipelineProcess {
  const client = startPipeline(gen, [
    '--address',
    address,
    '--pipeline',
    'chain',
    '--stages',
    String(STAGES.length),
    '--agent-delay',
    '0.6', // the window in which the test acts on "agent started"
    '--reconnect',
    '90',
    '--process-id',
    processId,
  ]);
  clients.push(client);
  return client;
}

const progressed = (client: PipelineProcess, event: string, field: string, value: string) =>
  client.progress().some((p) => p.event === event && p[field] === value);

async function killDaemon(): Promise<void> {
  daemon.child.kill('SIGKILL');
  const { signal } = await daemon.exited;
  expect(signal).toBe('SIGKILL');
}

/** The run's events over a fresh API connection to the (restarted) daemon. */
async function eventsOf(processId: string) {
  const api = await WardenClient.connect({ url: daemon.acpUrl, token: daemon.token });
  try {
    return await runOf(api, processId);
  } finally {
    await api.close();
  }
}

/** The result every scenario must end with: COMPLETED, each stage run and committed once. */
async function expectCommittedOnce(client: PipelineProcess, processId: string) {
  const { code, result } = await client.done;
  expect(code, client.stderr()).toBe(0);
  expect(result).toMatchObject({
    status: 'terminated',
    terminal_reason: 'COMPLETED',
    counters: { agent_hop_count: 6, llm_call_count: 6, iteration: 0 },
    current_stage: 'end',
    ran: STAGES,
  });
  expect(result.retries).toBeGreaterThan(0);
  expect(Object.keys(result.outputs).sort()).toEqual(STAGES);
  expect(result.session.edge_traversals).toEqual({
    's1->s2': 1,
    's2->s3': 1,
    's3->s4': 1,
    's4->s5': 1,
    's5->s6': 1,
  });
  const { events } = await eventsOf(processId);
  expect(perStage(events, 'stage.started')).toEqual(ONCE);
  expect(perStage(events, 'stage.completed')).toEqual(ONCE);
  expect(perStage(events, 'task.succeeded')).toEqual(ONCE);
  expect(perStage(events, 'stage.failed')).toEqual({});
  expect(events.filter((e) => e.type === 'process.terminated').map((e) => e.data.reason)).toEqual([
    'completed',
  ]);
  const ledger = await runCli(['ledger', 'verify', '--json'], { home });
  expect(ledger.code, ledger.stdout + ledger.stderr).toBe(0);
  return result;
}

describe('the Python gRPC client across a daemon SIGKILL', () => {
  it('killed while an agent runs: the report waits for the restarted daemon, nothing runs twice', async () => {
    const processId = 'env_chaos_agent_running';
    const client = chainClient(`127.0.0.1:${String(grpcPort)}`, processId);
    await waitFor(
      () => progressed(client, 'agent_started', 'agent', 's3'),
      60_000,
      'the client started s3',
    );
    await killDaemon();
    // Restart only once the client has met the outage, so it really went through one.
    await waitFor(() => progressed(client, 'retry', 'code', 'UNAVAILABLE'), 60_000, 'a retry');
    daemon = await startDaemon(home);
    await expectCommittedOnce(client, processId);
  }, 180_000);

  it('killed after a report committed but before its reply arrived: the retry is taken as committed', async () => {
    const processId = 'env_chaos_reply_lost';
    const client = chainClient(`127.0.0.1:${String(await relay.listen())}`, processId);
    await waitFor(
      () => progressed(client, 'agent_started', 'agent', 's3'),
      60_000,
      'the client started s3',
    );
    relay.dropReplies = true; // s3's report gets through; its answer will not
    await waitFor(
      async () => perStage((await eventsOf(processId)).events, 'stage.completed').s3 === 1,
      60_000,
      's3 committed',
    );
    expect(progressed(client, 'reported', 'agent', 's3')).toBe(false);
    await killDaemon();
    relay.cut();
    relay.dropReplies = false;
    await waitFor(
      () => progressed(client, 'retry', 'rpc', 'ReportAgentResult'),
      60_000,
      'the report retried',
    );
    daemon = await startDaemon(home);
    const result = await expectCommittedOnce(client, processId);
    expect(result.already_committed).toBe(1);
    expect(
      client
        .progress()
        .filter((p) => p.event === 'already_committed')
        .map((p) => p.agent),
    ).toEqual(['s3']);
  }, 180_000);
});
