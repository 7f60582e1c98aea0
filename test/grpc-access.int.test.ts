/**
 * Every one of the 25 `jeeves.engine.v1` RPCs goes through the same gate as ACP
 * (docs/protocol/jeeves.md#authentication-and-authorization): an unknown token is
 * UNAUTHENTICATED and a token whose scopes do not cover the equivalent ACP method is
 * PERMISSION_DENIED — unary and streaming alike, before the RPC does anything. The expected
 * scope of each RPC is written here from the doc's tables, not read from Warden's code.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.ts';
import { type GrpcDaemon, metadataOf, startGrpcDaemon } from './helpers/jeeves-grpc.ts';
import { removeTempDirs } from './helpers/tmp.ts';

type Scope = 'read' | 'write';

/** service, RPC, the scope its ACP method needs, whether it streams. */
const RPCS: ReadonlyArray<readonly [string, string, Scope, boolean]> = [
  ['KernelService', 'CreateProcess', 'write', false],
  ['KernelService', 'GetProcess', 'read', false],
  ['KernelService', 'ScheduleProcess', 'write', false],
  ['KernelService', 'GetNextRunnable', 'write', false],
  ['KernelService', 'TransitionState', 'write', false],
  ['KernelService', 'TerminateProcess', 'write', false],
  ['KernelService', 'CheckQuota', 'read', false],
  ['KernelService', 'RecordUsage', 'write', false],
  ['KernelService', 'CheckRateLimit', 'write', false],
  ['KernelService', 'ListProcesses', 'read', false],
  ['KernelService', 'GetProcessCounts', 'read', false],
  ['EngineService', 'CreateEnvelope', 'read', false],
  ['EngineService', 'UpdateEnvelope', 'read', false],
  ['EngineService', 'CloneEnvelope', 'read', false],
  ['EngineService', 'CheckBounds', 'read', false],
  ['EngineService', 'ExecutePipeline', 'write', true],
  ['EngineService', 'ExecuteAgent', 'write', false],
  ['OrchestrationService', 'InitializeSession', 'write', false],
  ['OrchestrationService', 'GetNextInstruction', 'write', false],
  ['OrchestrationService', 'ReportAgentResult', 'write', false],
  ['OrchestrationService', 'GetSessionState', 'read', false],
  ['CommBusService', 'Publish', 'write', false],
  ['CommBusService', 'Send', 'write', false],
  ['CommBusService', 'Query', 'write', false],
  ['CommBusService', 'Subscribe', 'read', true],
];

let served: GrpcDaemon;
let readerToken: string;

beforeAll(async () => {
  served = await startGrpcDaemon();
  const created = await runCli(
    ['token', 'create', '--name', 'reader', '--scopes', 'read', '--json'],
    {
      home: served.home,
    },
  );
  expect(created.code, created.stderr).toBe(0);
  readerToken = (JSON.parse(created.stdout) as { token: string }).token;
}, 60_000);

afterAll(async () => {
  await served?.stop();
  removeTempDirs();
});

/**
 * The status an RPC ends with: its error's code, or OK. A stream that is still open after
 * `openMs` with no error counts as OK (Subscribe streams until cancelled).
 */
function outcome(
  service: string,
  rpc: string,
  streaming: boolean,
  metadata: grpc.Metadata,
  openMs = 400,
): Promise<{ code: grpc.status; details: string }> {
  const client = served.client(service) as unknown as Record<
    string,
    (...args: unknown[]) => unknown
  >;
  const request = {};
  if (!streaming)
    return new Promise((resolve) => {
      client[rpc]!(request, metadata, (error: grpc.ServiceError | null) =>
        resolve(
          error
            ? { code: error.code, details: error.details }
            : { code: grpc.status.OK, details: '' },
        ),
      );
    });
  return new Promise((resolve) => {
    const stream = client[rpc]!(request, metadata) as grpc.ClientReadableStream<unknown>;
    const timer = setTimeout(() => {
      stream.cancel();
      resolve({ code: grpc.status.OK, details: '' });
    }, openMs);
    stream.on('data', () => undefined);
    stream.on('error', (error: grpc.ServiceError) => {
      clearTimeout(timer);
      resolve({ code: error.code, details: error.details });
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ code: grpc.status.OK, details: '' });
    });
  });
}

describe('the gate in front of every jeeves RPC', () => {
  it('lists all 25 RPCs of the four services', () => {
    expect(RPCS).toHaveLength(25);
    for (const [service, rpc] of RPCS) {
      const methods = Object.keys(served.services[service]!.service);
      expect(methods, `${service}.${rpc}`).toContain(rpc);
    }
    const served25 = Object.entries(served.services)
      .filter(([name]) => name.endsWith('Service'))
      .flatMap(([name, ctor]) => Object.keys(ctor.service).map((m) => `${name}.${m}`));
    expect(served25.sort()).toEqual(RPCS.map(([s, r]) => `${s}.${r}`).sort());
  });

  it.each(RPCS)(
    '%s.%s: an unknown token is UNAUTHENTICATED',
    async (service, rpc, _scope, streaming) => {
      const result = await outcome(
        service,
        rpc,
        streaming,
        metadataOf({ authorization: 'Bearer wdn_not_a_token', user_id: 'u', session_id: 's' }),
      );
      expect(result.code, result.details).toBe(grpc.status.UNAUTHENTICATED);
      expect(result.details).not.toContain('wdn_not_a_token');
    },
  );

  it.each(RPCS)(
    '%s.%s: a read-only token is denied exactly when the RPC needs write',
    async (service, rpc, scope, streaming) => {
      const result = await outcome(
        service,
        rpc,
        streaming,
        metadataOf({ authorization: `Bearer ${readerToken}`, user_id: 'u', session_id: 's' }),
      );
      if (scope === 'write') {
        expect(result.code, result.details).toBe(grpc.status.PERMISSION_DENIED);
        expect(result.details).not.toContain(readerToken);
      } else {
        expect(result.code, result.details).not.toBe(grpc.status.PERMISSION_DENIED);
        expect(result.code, result.details).not.toBe(grpc.status.UNAUTHENTICATED);
      }
    },
  );
});
