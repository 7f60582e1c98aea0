/**
 * One measurement of the events benchmark: a fresh database, sessions created through the
 * kernel (untimed), then E events appended through the Store port's `commit` with `event` ops
 * — the path every kernel and queue write takes: each event gets its session's next seq and its
 * hash-chain link in the commit — B events per commit, K commits in flight. Then every
 * session's log is read back (replay) and the whole ledger verified.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';

import { Kernel, openSqliteStore, type Store, verifyLedger } from '../../src/index.ts';

export type Scenario = 'one-session' | 'many-sessions';

export interface MeasureInput {
  readonly durability: 'fast' | 'strict';
  readonly scenario: Scenario;
  /** Sessions the events are spread over (1 for one-session). */
  readonly sessions: number;
  readonly events: number;
  readonly batch: number;
  readonly inFlight: number;
  readonly tmpDir: string;
}

export interface MeasureResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly events: number;
  readonly commits: number;
  readonly appendSeconds?: number;
  readonly appendPerSecond?: number;
  /** Events read back from every session's log (one after the other), and how fast. */
  readonly replayEvents?: number;
  readonly replayPerSecond?: number;
  readonly verifyOk?: boolean;
  readonly verifyEvents?: number;
  readonly verifySeconds?: number;
}

/** Readback page size: the largest readEvents allows. */
const PAGE = 10_000;
const PAD = 'x'.repeat(64);

let counter = 0;

async function replay(store: Store, sessionId: string): Promise<number> {
  let afterSeq = 0;
  let read = 0;
  for (;;) {
    const page = await store.readEvents({ sessionId, afterSeq, limit: PAGE });
    if (page.length === 0) return read;
    read += page.length;
    afterSeq = page[page.length - 1]!.seq;
  }
}

export async function measure(input: MeasureInput): Promise<MeasureResult> {
  const file = join(input.tmpDir, `events-${process.pid}-${++counter}.db`);
  const store = await openSqliteStore({ file, durability: input.durability });
  const kernel = new Kernel({ store });
  const commits = Math.ceil(input.events / input.batch);
  try {
    // Sessions as the kernel creates them (row + session.created event), outside the clock.
    const sessions: string[] = [];
    for (let s = 0; s < input.sessions; s++)
      sessions.push((await kernel.sessions.ensure(`bench-${s}`)).id);
    const trace = kernel.ids.next('tr');
    // Event k of the stream goes to session k mod S; commit c holds events c·B … c·B + B − 1.
    const ops = (c: number) => {
      const out = [];
      for (let k = c * input.batch; k < Math.min(input.events, (c + 1) * input.batch); k++)
        out.push({
          op: 'event' as const,
          event: {
            session_id: sessions[k % sessions.length]!,
            type: 'task.progress' as const,
            trace_id: trace,
            data: { k, pad: PAD },
          },
        });
      return out;
    };
    let next = 0;
    const appender = async () => {
      for (let c = next++; c < commits; c = next++) await store.commit(ops(c));
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: input.inFlight }, appender));
    const appendSeconds = (performance.now() - t0) / 1000;

    const r0 = performance.now();
    let replayEvents = 0;
    for (const session of sessions) replayEvents += await replay(store, session);
    const replaySeconds = (performance.now() - r0) / 1000;
    const expected = input.events + sessions.length; // + one session.created each
    if (replayEvents !== expected)
      throw new Error(`replay read ${replayEvents} events, expected ${expected}`);

    const v0 = performance.now();
    const verification = await verifyLedger(store);
    const verifySeconds = (performance.now() - v0) / 1000;
    return {
      ok: verification.ok,
      ...(verification.ok ? {} : { error: 'ledger verification failed' }),
      events: input.events,
      commits,
      appendSeconds,
      appendPerSecond: input.events / appendSeconds,
      replayEvents,
      replayPerSecond: replayEvents / replaySeconds,
      verifyOk: verification.ok,
      verifyEvents: verification.events,
      verifySeconds,
    };
  } catch (error) {
    return {
      ok: false,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      events: input.events,
      commits,
    };
  } finally {
    kernel.close();
    await store.close();
    for (const suffix of ['', '-wal', '-shm', '-wake']) rmSync(`${file}${suffix}`, { force: true });
  }
}
