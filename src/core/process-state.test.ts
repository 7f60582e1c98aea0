import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from './errors.ts';
import {
  assertTransition,
  canTransition,
  isTerminalProcessState,
  PRIORITIES,
  priorityRank,
  PROCESS_STATES,
  type ProcessState,
} from './process-state.ts';

/** Independent reference: the lifecycle table from DESIGN.md §5, written out by hand. */
const REFERENCE: Record<ProcessState, Partial<Record<ProcessState, 'always' | 'force'>>> = {
  new: { ready: 'always', terminated: 'always' },
  ready: { running: 'always', terminated: 'always' },
  running: { ready: 'always', waiting: 'always', blocked: 'always', terminated: 'force' },
  waiting: { ready: 'always', terminated: 'always' },
  blocked: { ready: 'always', terminated: 'always' },
  terminated: { zombie: 'always' },
  zombie: {},
};

function referenceLegal(from: ProcessState, to: ProcessState, force: boolean): boolean {
  const rule = REFERENCE[from][to];
  if (rule === undefined) return false;
  return rule === 'always' || force;
}

const stateArb = fc.constantFrom(...PROCESS_STATES);
const forceArb = fc.oneof(fc.constant(undefined), fc.boolean());

function options(force: boolean | undefined): { force?: boolean } {
  return force === undefined ? {} : { force };
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('process lifecycle', () => {
  it('the state list is exactly the documented seven states', () => {
    expect([...PROCESS_STATES].sort()).toEqual(Object.keys(REFERENCE).sort());
  });

  it('canTransition agrees with the reference table for every (from, to, force)', () => {
    for (const from of PROCESS_STATES) {
      for (const to of PROCESS_STATES) {
        for (const force of [undefined, false, true]) {
          expect(canTransition(from, to, options(force)), `${from}→${to} force=${force}`).toBe(
            referenceLegal(from, to, force === true),
          );
        }
      }
    }
  });

  it('property: canTransition and assertTransition agree with the reference on random sequences', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(stateArb, stateArb, forceArb), { maxLength: 60 }), (pairs) => {
        for (const [from, to, force] of pairs) {
          const legal = referenceLegal(from, to, force === true);
          expect(canTransition(from, to, options(force))).toBe(legal);
          const error = thrownBy(() => assertTransition(from, to, options(force)));
          if (legal) {
            expect(error).toBeUndefined();
            expect(assertTransition(from, to, options(force))).toBe(to);
          } else {
            expect(isWardenError(error, 'INVALID_STATE')).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: a random walk over legal transitions never leaves the state set; illegal ones are rejected', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(stateArb, fc.boolean()), { minLength: 1, maxLength: 100 }),
        (moves) => {
          let state: ProcessState = 'new';
          const visited = new Set<ProcessState>([state]);
          for (const [to, force] of moves) {
            if (referenceLegal(state, to, force)) {
              state = assertTransition(state, to, { force });
              visited.add(state);
            } else {
              const before = state;
              const error = thrownBy(() => assertTransition(before, to, { force }));
              expect(isWardenError(error, 'INVALID_STATE')).toBe(true);
              expect(canTransition(before, to, { force })).toBe(false);
            }
            expect(PROCESS_STATES).toContain(state);
          }
          // A walk that reached a terminal state never comes back.
          if (visited.has('terminated')) expect(isTerminalProcessState(state)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('terminating a running process needs force, and the error says so', () => {
    expect(canTransition('running', 'terminated')).toBe(false);
    expect(canTransition('running', 'terminated', { force: false })).toBe(false);
    expect(canTransition('running', 'terminated', { force: true })).toBe(true);
    const error = thrownBy(() => assertTransition('running', 'terminated', { pid: 'p_1' }));
    expect(isWardenError(error, 'INVALID_STATE')).toBe(true);
    expect((error as Error).message).toContain('p_1');
    expect((error as Error).message).toContain('needs force');
    expect((error as { details?: unknown }).details).toEqual({
      from: 'running',
      to: 'terminated',
      pid: 'p_1',
    });
  });

  it('force never makes an otherwise illegal transition legal', () => {
    expect(canTransition('zombie', 'ready', { force: true })).toBe(false);
    expect(canTransition('terminated', 'ready', { force: true })).toBe(false);
    expect(canTransition('new', 'running', { force: true })).toBe(false);
    expect(canTransition('ready', 'ready', { force: true })).toBe(false);
  });

  it('terminal states are exactly terminated and zombie', () => {
    expect(PROCESS_STATES.filter(isTerminalProcessState)).toEqual(['terminated', 'zombie']);
  });

  it('priorities rank best first', () => {
    expect(PRIORITIES.map(priorityRank)).toEqual([0, 1, 2, 3, 4]);
    expect(priorityRank('realtime')).toBeLessThan(priorityRank('idle'));
  });
});
