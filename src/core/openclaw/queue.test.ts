import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../errors.ts';
import {
  DEFAULT_QUEUE_SETTINGS,
  drain,
  EMPTY_SESSION_QUEUE,
  finish,
  markActive,
  MAX_DROP_SUMMARIES,
  normalizeQueueMode,
  offer,
  QUEUE_MODES,
  type QueuedTurn,
  type QueueMode,
  type QueueSettings,
  resolveQueueMode,
  resolveQueueSettings,
  type SessionQueue,
  summarizeTurn,
} from './queue.ts';

const turn = (id: string, extra: Partial<QueuedTurn> = {}): QueuedTurn => ({
  id,
  text: `msg ${id}`,
  enqueuedAt: 0,
  promptOnly: true,
  ...extra,
});
const settings = (over: Partial<QueueSettings> = {}): QueueSettings => ({
  ...DEFAULT_QUEUE_SETTINGS,
  ...over,
});

/** Starts `r0` and offers the given turns behind it. */
function running(mode: QueueMode, turns: QueuedTurn[], over: Partial<QueueSettings> = {}) {
  const s = settings({ mode, ...over });
  let queue = offer(EMPTY_SESSION_QUEUE, turn('r0'), s).queue;
  const results = turns.map((t) => {
    const r = offer(queue, t, s);
    queue = r.queue;
    return r;
  });
  return { queue, results, s };
}

describe('normalizeQueueMode', () => {
  it('accepts the five modes, any case, trimmed', () => {
    expect(QUEUE_MODES).toEqual(['followup', 'steer', 'collect', 'interrupt', 'steer-backlog']);
    for (const mode of QUEUE_MODES)
      expect(normalizeQueueMode(` ${mode.toUpperCase()} `)).toBe(mode);
  });

  it('maps legacy queue to steer, and steer+backlog / steer_backlog to steer-backlog', () => {
    expect(normalizeQueueMode('queue')).toBe('steer');
    expect(normalizeQueueMode('steer+backlog')).toBe('steer-backlog');
    expect(normalizeQueueMode('STEER_BACKLOG')).toBe('steer-backlog');
  });

  it('returns null for anything else', () => {
    for (const raw of ['', 'default', 'reset', 'constructor', '__proto__', 'toString', 42, null]) {
      expect(normalizeQueueMode(raw)).toBeNull();
    }
  });
});

describe('resolveQueueSettings', () => {
  it('defaults: followup, cap 20, drop summarize, debounce 500 ms', () => {
    expect(resolveQueueSettings()).toEqual({
      mode: 'followup',
      cap: 20,
      drop: 'summarize',
      debounceMs: 500,
    });
  });

  it('ignores a cap below 1 and a bad debounce, as OpenClaw does', () => {
    expect(resolveQueueSettings({ cap: 0, debounceMs: -1 })).toMatchObject({
      cap: 20,
      debounceMs: 500,
    });
    expect(resolveQueueSettings({ cap: Number.NaN, debounceMs: Infinity }).cap).toBe(20);
    expect(resolveQueueSettings({ cap: 3.7, debounceMs: 0 })).toMatchObject({
      cap: 3,
      debounceMs: 0,
    });
    expect(resolveQueueSettings({ mode: 'steer+backlog', drop: 'new' })).toMatchObject({
      mode: 'steer-backlog',
      drop: 'new',
    });
    expect(resolveQueueSettings({ mode: 'nope', drop: 'nope' })).toMatchObject({
      mode: 'followup',
      drop: 'summarize',
    });
  });
});

describe('resolveQueueMode precedence (§6.2)', () => {
  const all = {
    request: 'interrupt',
    session: 'collect',
    byChannel: { discord: 'steer' },
    channel: 'discord',
    global: 'steer-backlog',
  };

  it('the per-request queueMode wins', () => {
    expect(resolveQueueMode(all)).toBe('interrupt');
  });

  it('then the session override', () => {
    expect(resolveQueueMode({ ...all, request: undefined })).toBe('collect');
  });

  it('then byChannel for the message channel (case-insensitive)', () => {
    expect(
      resolveQueueMode({ ...all, request: undefined, session: null, channel: 'Discord' }),
    ).toBe('steer');
  });

  it('then the global mode', () => {
    expect(resolveQueueMode({ ...all, request: undefined, session: null, channel: 'slack' })).toBe(
      'steer-backlog',
    );
  });

  it('then followup, Warden default (not steer: Warden cannot inject into a model call)', () => {
    expect(resolveQueueMode({})).toBe('followup');
  });

  it('skips values that are not modes, and never reads the prototype', () => {
    expect(resolveQueueMode({ request: 'bogus', session: 'queue' })).toBe('steer');
    expect(resolveQueueMode({ byChannel: {}, channel: 'constructor' })).toBe('followup');
    expect(resolveQueueMode({ byChannel: {}, channel: '__proto__', global: 'collect' })).toBe(
      'collect',
    );
  });
});

describe('offer', () => {
  it('with no active run: start, and the turn becomes active', () => {
    const r = offer(EMPTY_SESSION_QUEUE, turn('a'), settings());
    expect(r.outcome).toEqual({ kind: 'start' });
    expect(r.queue.activeRunId).toBe('a');
    expect(r.dropped).toEqual([]);
  });

  it('followup appends each message in order', () => {
    const { queue, results } = running('followup', [turn('a'), turn('b'), turn('c')]);
    expect(results.map((r) => r.outcome)).toEqual([
      { kind: 'queued', position: 1 },
      { kind: 'queued', position: 2 },
      { kind: 'queued', position: 3 },
    ]);
    expect(queue.pending.map((t) => t.id)).toEqual(['a', 'b', 'c']);
  });

  it('steer keeps only the newest pending message (falls back to a followup)', () => {
    const { queue, results } = running('steer', [turn('a'), turn('b')]);
    expect(results[1]!.outcome).toEqual({ kind: 'queued', position: 1 });
    expect(results[1]!.dropped.map((t) => t.id)).toEqual(['a']);
    expect(queue.pending.map((t) => t.id)).toEqual(['b']);
    expect(queue.activeRunId).toBe('r0');
  });

  it('steer summarises the message it replaces (drop summarize)', () => {
    const { queue, s } = running('steer', [turn('a', { text: 'first' }), turn('b')]);
    expect(finish(queue, 'r0', 0, s).next!.text).toBe(
      '[1 earlier message dropped: "first"]\n\nmsg b',
    );
  });

  it('interrupt names the active run to abort and keeps only the newest', () => {
    const { queue, results, s } = running('interrupt', [turn('a'), turn('b')]);
    expect(results.map((r) => r.outcome)).toEqual([
      { kind: 'interrupt', abortRunId: 'r0' },
      { kind: 'interrupt', abortRunId: 'r0' },
    ]);
    expect(queue.pending.map((t) => t.id)).toEqual(['b']);
    const after = finish(queue, 'r0', 0, s);
    expect(after.next!.id).toBe('b');
    expect(after.queue.activeRunId).toBe('b');
  });

  it('collect appends (merging happens at drain)', () => {
    const { queue } = running('collect', [turn('a'), turn('b')]);
    expect(queue.pending.map((t) => t.id)).toEqual(['a', 'b']);
  });

  it('steer-backlog appends', () => {
    const { queue } = running('steer-backlog', [turn('a'), turn('b')]);
    expect(queue.pending.map((t) => t.id)).toEqual(['a', 'b']);
  });

  it('cap overflow with drop summarize drops the oldest and keeps a summary', () => {
    const { queue, results } = running(
      'followup',
      [turn('a', { text: 'hello\n  world' }), turn('b'), turn('c')],
      {
        cap: 2,
      },
    );
    expect(results[2]!.outcome).toEqual({ kind: 'queued', position: 2 });
    expect(results[2]!.dropped.map((t) => t.id)).toEqual(['a']);
    expect(queue.pending.map((t) => t.id)).toEqual(['b', 'c']);
    expect(queue.summaries).toEqual(['"hello world"']);
  });

  it('cap overflow with drop old drops the oldest silently', () => {
    const { queue, results } = running('followup', [turn('a'), turn('b'), turn('c')], {
      cap: 2,
      drop: 'old',
    });
    expect(results[2]!.dropped.map((t) => t.id)).toEqual(['a']);
    expect(queue.pending.map((t) => t.id)).toEqual(['b', 'c']);
    expect(queue.summaries).toEqual([]);
  });

  it('cap overflow with drop new rejects the newest', () => {
    const { queue, results } = running('followup', [turn('a'), turn('b'), turn('c')], {
      cap: 2,
      drop: 'new',
    });
    expect(results[2]!.outcome).toEqual({ kind: 'rejected', reason: 'queue full' });
    expect(results[2]!.dropped).toEqual([]);
    expect(results[2]!.queue).toBe(results[1]!.queue);
    expect(queue.pending.map((t) => t.id)).toEqual(['a', 'b']);
  });

  it('a turn id already running or queued is refused with ALREADY_EXISTS', () => {
    const { queue, s } = running('followup', [turn('a')]);
    for (const id of ['r0', 'a']) {
      let caught: unknown;
      try {
        offer(queue, turn(id), s);
      } catch (e) {
        caught = e;
      }
      expect(isWardenError(caught, 'ALREADY_EXISTS')).toBe(true);
    }
  });
});

describe('finish and drain', () => {
  it('hand out the next turn when the active run ends, and make it active', () => {
    const { queue, s } = running('followup', [turn('a'), turn('b')]);
    const one = finish(queue, 'r0', 0, s);
    expect(one.next).toMatchObject({ id: 'a', text: 'msg a', sourceIds: ['a'] });
    expect(one.queue.activeRunId).toBe('a');
    const two = finish(one.queue, 'a', 0, s);
    expect(two.next!.id).toBe('b');
    const three = finish(two.queue, 'b', 0, s);
    expect(three.next).toBeNull();
    expect(three.queue).toEqual({ activeRunId: null, pending: [], summaries: [] });
  });

  it('a finish for a run that is not active changes nothing', () => {
    const { queue, s } = running('followup', [turn('a')]);
    expect(finish(queue, 'other', 0, s)).toEqual({ queue, next: null });
    const after = finish(queue, 'r0', 0, s).queue;
    expect(finish(after, 'r0', 0, s)).toEqual({ queue: after, next: null });
  });

  it('markActive renames the active run; finish then needs the new id', () => {
    const { queue, s } = running('followup', [turn('a')]);
    const renamed = markActive(queue, 'run-123');
    expect(finish(renamed, 'r0', 0, s).next).toBeNull();
    expect(finish(renamed, 'run-123', 0, s).next!.id).toBe('a');
    expect(() => markActive(queue, '')).toThrow();
  });

  it('collect merges consecutive prompt-only turns of one channel+thread with a blank line', () => {
    const { queue, s } = running('collect', [
      turn('a', { text: 'one', channel: 'slack', threadId: 't' }),
      turn('b', { text: 'two', channel: 'slack', threadId: 't' }),
      turn('c', { text: 'three', channel: 'slack', threadId: 't' }),
    ]);
    const r = finish(queue, 'r0', 10_000, s);
    expect(r.next).toMatchObject({
      id: 'a',
      text: 'one\n\ntwo\n\nthree',
      sourceIds: ['a', 'b', 'c'],
    });
    expect(r.queue.pending).toEqual([]);
  });

  it('collect drains different channels and threads separately', () => {
    const { queue, s } = running('collect', [
      turn('a', { channel: 'slack', threadId: 't1' }),
      turn('b', { channel: 'slack', threadId: 't2' }),
      turn('c', { channel: 'discord', threadId: 't2' }),
      turn('d', { channel: 'discord', threadId: 't2' }),
      turn('e', { channel: 'slack', threadId: 't1' }),
    ]);
    const first = finish(queue, 'r0', 10_000, s);
    const second = finish(first.queue, first.next!.id, 10_000, s);
    const third = finish(second.queue, second.next!.id, 10_000, s);
    const fourth = finish(third.queue, third.next!.id, 10_000, s);
    expect([first, second, third, fourth].map((r) => r.next!.sourceIds)).toEqual([
      ['a'],
      ['b'],
      ['c', 'd'],
      ['e'],
    ]);
  });

  it('collect does not merge a turn that is not prompt-only', () => {
    const { queue, s } = running('collect', [
      turn('a'),
      turn('b', { promptOnly: false, attachments: 1 }),
      turn('c'),
    ]);
    const first = finish(queue, 'r0', 10_000, s);
    expect(first.next!.sourceIds).toEqual(['a']);
    expect(finish(first.queue, 'a', 10_000, s).next!.sourceIds).toEqual(['b']);
  });

  it('collect waits for the quiet window: next null and retryAt while the newest is young', () => {
    const { queue, s } = running('collect', [
      turn('a', { enqueuedAt: 1_000 }),
      turn('b', { enqueuedAt: 1_200 }),
    ]);
    const early = finish(queue, 'r0', 1_300, s);
    expect(early.next).toBeNull();
    expect(early.retryAt).toBe(1_700);
    expect(early.queue.activeRunId).toBeNull();
    // A message arriving in the window queues behind the waiting ones and extends the window.
    const late = offer(early.queue, turn('c', { enqueuedAt: 1_600 }), s);
    expect(late.outcome).toEqual({ kind: 'queued', position: 3 });
    expect(drain(late.queue, 1_700, s)).toMatchObject({ next: null, retryAt: 2_100 });
    const ready = drain(late.queue, 2_100, s);
    expect(ready.next!.sourceIds).toEqual(['a', 'b', 'c']);
    expect(ready.queue.activeRunId).toBe('a');
  });

  it('followup has no quiet window', () => {
    const { queue, s } = running('followup', [turn('a', { enqueuedAt: 1_000 })]);
    expect(finish(queue, 'r0', 1_000, s).next!.id).toBe('a');
  });

  it('drain hands out nothing while a run is active', () => {
    const { queue, s } = running('followup', [turn('a')]);
    expect(drain(queue, 0, s)).toEqual({ queue, next: null });
  });

  it('summaries of dropped turns are prepended to the next turn and then cleared', () => {
    const { queue, s } = running(
      'followup',
      [turn('a', { text: 'A' }), turn('b', { text: 'B' }), turn('c'), turn('d')],
      {
        cap: 2,
      },
    );
    const r = finish(queue, 'r0', 0, s);
    expect(r.next!.text).toBe('[2 earlier messages dropped: "A"; "B"]\n\nmsg c');
    expect(r.queue.summaries).toEqual([]);
    expect(finish(r.queue, 'c', 0, s).next!.text).toBe('msg d');
  });

  it('summaries are bounded; evicted ones are still counted', () => {
    const turns = Array.from({ length: MAX_DROP_SUMMARIES + 6 }, (_, i) => turn(`t${i}`));
    const { queue, s } = running('followup', turns, { cap: 1 });
    expect(queue.summaries).toHaveLength(MAX_DROP_SUMMARIES);
    const text = finish(queue, 'r0', 0, s).next!.text;
    expect(text.startsWith(`[${MAX_DROP_SUMMARIES + 5} earlier messages dropped: "msg t5";`)).toBe(
      true,
    );
    expect(text).toContain('; and 5 more]\n\nmsg t25');
  });
});

describe('summarizeTurn', () => {
  it('collapses whitespace, cuts long text, notes attachments', () => {
    expect(summarizeTurn(turn('a', { text: ' a \n\t b ' }))).toBe('"a b"');
    const long = summarizeTurn(turn('a', { text: 'x'.repeat(500) }));
    expect(long).toBe(JSON.stringify(`${'x'.repeat(119)}…`));
    expect(summarizeTurn(turn('a', { text: '', attachments: 2 }))).toBe(
      '(no text) (+2 attachments)',
    );
    expect(summarizeTurn(turn('a', { text: 'hi', attachments: 1 }))).toBe('"hi" (+1 attachment)');
  });
});

// --- properties ------------------------------------------------------------------------------

type Op =
  | {
      readonly op: 'offer';
      readonly channel: number;
      readonly promptOnly: boolean;
      readonly dt: number;
    }
  | { readonly op: 'finish' }
  | { readonly op: 'drain'; readonly dt: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('offer' as const),
    channel: fc.integer({ min: 0, max: 2 }),
    promptOnly: fc.boolean(),
    dt: fc.integer({ min: 0, max: 300 }),
  }),
  fc.constant({ op: 'finish' as const }),
  fc.record({ op: fc.constant('drain' as const), dt: fc.integer({ min: 0, max: 1_000 }) }),
);
const settingsArb = fc.record({
  mode: fc.constantFrom(...QUEUE_MODES),
  cap: fc.integer({ min: 1, max: 5 }),
  drop: fc.constantFrom('summarize' as const, 'old' as const, 'new' as const),
  debounceMs: fc.integer({ min: 0, max: 500 }),
});

interface Trace {
  offered: string[];
  /** Ids in the order their turns began to run (started directly, or handed out). */
  ran: string[];
  dropped: string[];
  rejected: string[];
}

/** Runs the ops, then finishes and drains until the queue is empty; checks per-step invariants. */
function simulate(ops: readonly Op[], s: QueueSettings): Trace {
  const trace: Trace = { offered: [], ran: [], dropped: [], rejected: [] };
  let queue: SessionQueue = EMPTY_SESSION_QUEUE;
  let now = 0;
  // The harness's own view of what runs, to check the queue never starts two turns at once.
  let runningId: string | null = null;
  const handOut = (next: { id: string; sourceIds: readonly string[] } | null) => {
    if (next === null) return;
    expect(runningId).toBeNull();
    runningId = next.id;
    trace.ran.push(...next.sourceIds);
  };
  const step = (op: Op, index: number) => {
    if (op.op === 'offer') {
      now += op.dt;
      const id = `t${index}`;
      trace.offered.push(id);
      const r = offer(
        queue,
        { id, text: id, channel: `c${op.channel}`, enqueuedAt: now, promptOnly: op.promptOnly },
        s,
      );
      queue = r.queue;
      trace.dropped.push(...r.dropped.map((t) => t.id));
      if (r.outcome.kind === 'start') {
        expect(runningId).toBeNull();
        runningId = id;
        trace.ran.push(id);
      }
      if (r.outcome.kind === 'rejected') trace.rejected.push(id);
      if (r.outcome.kind === 'interrupt') expect(r.outcome.abortRunId).toBe(runningId);
    } else if (op.op === 'finish') {
      if (runningId === null) return;
      const r = finish(queue, runningId, now, s);
      runningId = null;
      queue = r.queue;
      handOut(r.next);
    } else {
      now += op.dt;
      const r = drain(queue, now, s);
      queue = r.queue;
      handOut(r.next);
    }
    expect(queue.pending.length).toBeLessThanOrEqual(s.cap);
    expect(queue.activeRunId).toBe(runningId);
  };
  ops.forEach(step);
  for (let guard = 0; guard < 200 && (runningId !== null || queue.pending.length > 0); guard++) {
    if (runningId !== null) step({ op: 'finish' }, -1);
    else step({ op: 'drain', dt: s.debounceMs + 1 }, -1);
  }
  expect(queue.pending).toEqual([]);
  return trace;
}

describe('queue properties', () => {
  it('no turn is lost or duplicated except those reported dropped or rejected', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), settingsArb, (ops, s) => {
        const t = simulate(ops, s);
        const accounted = [...t.ran, ...t.dropped, ...t.rejected];
        expect(new Set(accounted).size).toBe(accounted.length);
        expect([...accounted].sort()).toEqual([...t.offered].sort());
      }),
      { numRuns: 500 },
    );
  });

  it('followup preserves FIFO order', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), settingsArb, (ops, s) => {
        const t = simulate(ops, { ...s, mode: 'followup' });
        const gone = new Set([...t.dropped, ...t.rejected]);
        expect(t.ran).toEqual(t.offered.filter((id) => !gone.has(id)));
      }),
      { numRuns: 500 },
    );
  });

  it('every mode runs turns in offer order (merging and dropping only remove)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), settingsArb, (ops, s) => {
        const t = simulate(ops, s);
        const order = new Map(t.offered.map((id, i) => [id, i]));
        const positions = t.ran.map((id) => order.get(id)!);
        expect(positions).toEqual([...positions].sort((a, b) => a - b));
      }),
      { numRuns: 500 },
    );
  });

  it('pending never exceeds the cap, and steer/interrupt keep at most one', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 60 }),
        settingsArb,
        fc.constantFrom('steer' as const, 'interrupt' as const),
        (ops, s, mode) => {
          let queue: SessionQueue = EMPTY_SESSION_QUEUE;
          const st = { ...s, mode };
          ops.forEach((op, i) => {
            if (op.op === 'offer') queue = offer(queue, turn(`t${i}`), st).queue;
            else if (op.op === 'finish' && queue.activeRunId !== null) {
              queue = finish(queue, queue.activeRunId, 0, st).queue;
            }
            expect(queue.pending.length).toBeLessThanOrEqual(1);
          });
        },
      ),
    );
  });
});
