/**
 * Fuzz: 10,000+ malformed frames and params thrown at a real daemon. Every frame that asks for
 * an answer gets a well-formed JSON-RPC response (a typed error, or a result when the random
 * params happen to be valid); the daemon never crashes and other clients are still served.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { ERROR_CATALOGUE } from '../src/core/index.ts';
import { commandParams } from '../src/protocols/commands/schemas.ts';
import { runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { connectRaw, type RawPeer, type RpcFrame } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

let daemon: DaemonProcess;
let peer: RawPeer;

beforeAll(async () => {
  const home = tempDir('warden-fuzz-');
  await runCli(['init'], { home });
  daemon = await startDaemon(home);
  peer = await connectRaw(daemon.acpUrl, daemon.token);
}, 60_000);

afterAll(async () => {
  peer?.close();
  await daemon?.stop();
  removeTempDirs();
});

/** Long waits would only slow the fuzzing down; everything else is fair game. */
const METHODS = Object.keys(commandParams).filter((m) => m !== 'task.claim' && m !== 'run.wait');

function wellFormed(frame: RpcFrame): void {
  expect(frame.jsonrpc).toBe('2.0');
  if (frame.error) {
    expect(frame.result).toBeUndefined();
    expect(Number.isInteger(frame.error.code)).toBe(true);
    expect(frame.error.message).toBeTypeOf('string');
    expect(Object.keys(ERROR_CATALOGUE)).toContain(frame.error.data?.code);
    expect(frame.error.data?.retryable).toBeTypeOf('boolean');
  } else expect(frame).toHaveProperty('result');
}

it('answers 10,000 malformed frames and params with well-formed errors and never crashes', async () => {
  // Raw text: not JSON, JSON that is not a request object, and broken envelopes.
  const rawFrame = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc
      .record({
        jsonrpc: fc.oneof(fc.constant('2.0'), fc.string({ maxLength: 5 }), fc.integer()),
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constant(null), fc.object()),
        method: fc.oneof(fc.constantFrom(...METHODS), fc.string({ maxLength: 30 }), fc.integer()),
        params: fc.oneof(fc.anything({ maxDepth: 2 }), fc.array(fc.integer())),
      })
      .filter((f) => f.id !== null && typeof f.id !== 'object')
      .map((v) => JSON.stringify(v)),
  );
  await fc.assert(
    fc.asyncProperty(rawFrame, async (text) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      // A valid notification (an object with a method and no id) is never answered by design.
      if (
        typeof parsed === 'object' &&
        parsed !== null &&
        !Array.isArray(parsed) &&
        !('id' in parsed)
      )
        return;
      wellFormed(await peer.sendRaw(text));
    }),
    { numRuns: 5_000 },
  );
  // Well-formed envelopes with hostile params for every method.
  const call = fc.record({
    method: fc.constantFrom(...METHODS),
    params: fc.oneof(
      fc.object({ maxDepth: 2 }),
      fc.dictionary(
        fc.constantFrom(
          'session_id',
          'key',
          'pid',
          'task_id',
          'lane',
          'name',
          'limit',
          'from_seq',
          'settings',
          'workflow',
          'attempt_token',
          'interrupt_id',
          'response',
        ),
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.integer(),
          fc.double(),
          fc.boolean(),
          fc.constant(null),
          fc.object({ maxDepth: 1 }),
        ),
      ),
    ),
  });
  await fc.assert(
    fc.asyncProperty(call, async ({ method, params }) => {
      wellFormed(await peer.call(method, params));
    }),
    { numRuns: 5_000 },
  );
  // Still alive, still serving everyone.
  expect((await fetch(`${daemon.url}/healthz`)).status).toBe(200);
  const other = await connectRaw(daemon.acpUrl, daemon.token);
  expect((await other.call('system.status', {})).result).toHaveProperty('uptime_ms');
  other.close();
  expect(daemon.child.exitCode).toBeNull();
}, 300_000);
