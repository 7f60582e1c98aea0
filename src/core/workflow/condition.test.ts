import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { evaluateCondition, jsonEqual, readField, type RoutingContext } from './condition.ts';
import { type Condition, conditionSchema } from './schema.ts';

function ctx(output: unknown, extra: Partial<RoutingContext> = {}): RoutingContext {
  return {
    output,
    outputs: {},
    state: {},
    metadata: {},
    input: null,
    interrupt: undefined,
    ...extra,
  };
}

/** Evaluates a condition after passing it through the schema, as a workflow file would. */
function holds(condition: unknown, context: RoutingContext): boolean {
  return evaluateCondition(conditionSchema.parse(condition), context);
}

describe('evaluateCondition: eq / neq', () => {
  it('compares numbers by value (1 == 1.0)', () => {
    expect(holds({ field: 'output.n', eq: 1 }, ctx({ n: 1.0 }))).toBe(true);
    expect(holds({ field: 'output.n', eq: 1.0 }, ctx({ n: 1 }))).toBe(true);
    expect(holds({ field: 'output.n', eq: 1 }, ctx({ n: 2 }))).toBe(false);
    expect(holds({ field: 'output.n', neq: 1 }, ctx({ n: 2 }))).toBe(true);
    expect(holds({ field: 'output.n', neq: 1 }, ctx({ n: 1.0 }))).toBe(false);
  });

  it('does not coerce between types', () => {
    expect(holds({ field: 'output.n', eq: 1 }, ctx({ n: '1' }))).toBe(false);
    expect(holds({ field: 'output.b', eq: true }, ctx({ b: 1 }))).toBe(false);
    expect(holds({ field: 'output.z', eq: null }, ctx({ z: 0 }))).toBe(false);
    expect(holds({ field: 'output.z', eq: null }, ctx({ z: null }))).toBe(true);
    expect(holds({ field: 'output.s', eq: 'yes' }, ctx({ s: 'yes' }))).toBe(true);
  });

  it('compares objects deeply regardless of key order, arrays by order', () => {
    const condition = { field: 'output.obj', eq: { a: 1, b: { c: [1, 2], d: 'x' } } };
    expect(holds(condition, ctx({ obj: { b: { d: 'x', c: [1, 2] }, a: 1 } }))).toBe(true);
    expect(holds(condition, ctx({ obj: { b: { d: 'x', c: [2, 1] }, a: 1 } }))).toBe(false);
    expect(holds(condition, ctx({ obj: { a: 1, b: { c: [1, 2], d: 'x' }, e: 1 } }))).toBe(false);
    expect(holds({ field: 'output.obj', neq: condition.eq }, ctx({ obj: { a: 1 } }))).toBe(true);
  });

  it('a missing field equals nothing, and is never eq to null', () => {
    expect(holds({ field: 'output.missing', eq: null }, ctx({}))).toBe(false);
    expect(holds({ field: 'output.missing', neq: null }, ctx({}))).toBe(true);
    expect(holds({ field: 'output.a.b.c', eq: 1 }, ctx({ a: 5 }))).toBe(false);
  });

  it('property: jsonEqual ignores key order and is reflexive and symmetric', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const reversed = JSON.parse(JSON.stringify(a), (_k, v: unknown) =>
          v !== null && typeof v === 'object' && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v).reverse())
            : v,
        ) as unknown;
        expect(jsonEqual(a, a)).toBe(true);
        expect(jsonEqual(a, reversed)).toBe(true);
        expect(jsonEqual(a, b)).toBe(jsonEqual(b, a));
      }),
    );
  });
});

describe('evaluateCondition: ordering operators', () => {
  it('gt / gte / lt / lte compare numbers', () => {
    const c = ctx({ n: 5 });
    expect(holds({ field: 'output.n', gt: 4 }, c)).toBe(true);
    expect(holds({ field: 'output.n', gt: 5 }, c)).toBe(false);
    expect(holds({ field: 'output.n', gte: 5 }, c)).toBe(true);
    expect(holds({ field: 'output.n', gte: 5.5 }, c)).toBe(false);
    expect(holds({ field: 'output.n', lt: 6 }, c)).toBe(true);
    expect(holds({ field: 'output.n', lt: 5 }, c)).toBe(false);
    expect(holds({ field: 'output.n', lte: 5 }, c)).toBe(true);
    expect(holds({ field: 'output.n', lte: 4.99 }, c)).toBe(false);
    expect(holds({ field: 'output.n', gt: -1 }, ctx({ n: 0 }))).toBe(true);
  });

  it('are false for anything that is not a number', () => {
    for (const value of ['5', '10', true, null, [5], { n: 5 }, undefined]) {
      const c = ctx({ n: value });
      expect(holds({ field: 'output.n', gt: 0 }, c), JSON.stringify(value)).toBe(false);
      expect(holds({ field: 'output.n', gte: 0 }, c), JSON.stringify(value)).toBe(false);
      expect(holds({ field: 'output.n', lt: 100 }, c), JSON.stringify(value)).toBe(false);
      expect(holds({ field: 'output.n', lte: 100 }, c), JSON.stringify(value)).toBe(false);
    }
  });

  it('property: agree with JavaScript comparison on numbers', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -50, max: 50 }),
        fc.integer({ min: -50, max: 50 }),
        (v, bound) => {
          const c = ctx({ v });
          expect(holds({ field: 'output.v', gt: bound }, c)).toBe(v > bound);
          expect(holds({ field: 'output.v', gte: bound }, c)).toBe(v >= bound);
          expect(holds({ field: 'output.v', lt: bound }, c)).toBe(v < bound);
          expect(holds({ field: 'output.v', lte: bound }, c)).toBe(v <= bound);
        },
      ),
    );
  });
});

describe('evaluateCondition: contains', () => {
  it('on strings tests for a substring', () => {
    expect(holds({ field: 'output.s', contains: 'ell' }, ctx({ s: 'hello' }))).toBe(true);
    expect(holds({ field: 'output.s', contains: 'xyz' }, ctx({ s: 'hello' }))).toBe(false);
    expect(holds({ field: 'output.s', contains: 1 }, ctx({ s: 'a1b' }))).toBe(false);
  });

  it('on arrays tests for a JSON-equal member', () => {
    expect(holds({ field: 'output.a', contains: 2 }, ctx({ a: [1, 2, 3] }))).toBe(true);
    expect(holds({ field: 'output.a', contains: '2' }, ctx({ a: [1, 2, 3] }))).toBe(false);
    expect(
      holds({ field: 'output.a', contains: { y: 1, x: 2 } }, ctx({ a: [{ x: 2, y: 1 }] })),
    ).toBe(true);
    expect(holds({ field: 'output.a', contains: [1] }, ctx({ a: [[1], [2]] }))).toBe(true);
    expect(holds({ field: 'output.a', contains: 1 }, ctx({ a: [] }))).toBe(false);
  });

  it('on objects tests for an own key', () => {
    expect(holds({ field: 'output.o', contains: 'k' }, ctx({ o: { k: null } }))).toBe(true);
    expect(holds({ field: 'output.o', contains: 'z' }, ctx({ o: { k: 1 } }))).toBe(false);
    expect(holds({ field: 'output.o', contains: 'toString' }, ctx({ o: {} }))).toBe(false);
  });

  it('is false on numbers, booleans, null and missing fields', () => {
    for (const value of [12, true, null, undefined]) {
      expect(holds({ field: 'output.x', contains: 1 }, ctx({ x: value }))).toBe(false);
    }
  });
});

describe('evaluateCondition: exists / not_exists', () => {
  it('treats null like a missing value', () => {
    expect(holds({ field: 'output.a', exists: true }, ctx({ a: 0 }))).toBe(true);
    expect(holds({ field: 'output.a', exists: true }, ctx({ a: '' }))).toBe(true);
    expect(holds({ field: 'output.a', exists: true }, ctx({ a: false }))).toBe(true);
    expect(holds({ field: 'output.a', exists: true }, ctx({ a: null }))).toBe(false);
    expect(holds({ field: 'output.a', exists: true }, ctx({}))).toBe(false);
    expect(holds({ field: 'output.a', not_exists: true }, ctx({ a: null }))).toBe(true);
    expect(holds({ field: 'output.a', not_exists: true }, ctx({}))).toBe(true);
    expect(holds({ field: 'output.a', not_exists: true }, ctx({ a: 0 }))).toBe(false);
    expect(holds({ field: 'output', not_exists: true }, ctx(null))).toBe(true);
  });
});

describe('evaluateCondition: and / or / not', () => {
  const yes: Condition = { always: true };
  const no: Condition = { not: { always: true } };

  it('always is true and not negates', () => {
    expect(evaluateCondition(yes, ctx(null))).toBe(true);
    expect(evaluateCondition(no, ctx(null))).toBe(false);
    expect(evaluateCondition({ not: no }, ctx(null))).toBe(true);
  });

  it('and / or combine', () => {
    expect(evaluateCondition({ and: [yes, yes] }, ctx(null))).toBe(true);
    expect(evaluateCondition({ and: [yes, no] }, ctx(null))).toBe(false);
    expect(evaluateCondition({ or: [no, yes] }, ctx(null))).toBe(true);
    expect(evaluateCondition({ or: [no, no] }, ctx(null))).toBe(false);
  });

  it('nests over fields from every root', () => {
    const c = ctx(
      { score: 7, tags: ['a', 'b'] },
      {
        outputs: { draft: { ok: true } },
        state: { round: 2 },
        metadata: { tenant: 'acme' },
        input: { lang: 'en' },
        interrupt: { approved: false },
      },
    );
    const condition = {
      and: [
        {
          or: [
            { field: 'output.score', gt: 9 },
            { field: 'output.tags', contains: 'b' },
          ],
        },
        { not: { field: 'interrupt.approved', eq: true } },
        { field: 'outputs.draft.ok', eq: true },
        { field: 'state.round', lte: 2 },
        { field: 'metadata.tenant', eq: 'acme' },
        { field: 'input.lang', neq: 'fr' },
      ],
    };
    expect(holds(condition, c)).toBe(true);
    expect(holds({ not: condition }, c)).toBe(false);
    expect(holds({ and: [...condition.and, { field: 'output.tags', contains: 'z' }] }, c)).toBe(
      false,
    );
  });

  it('property: and/or/not obey boolean algebra over random leaves', () => {
    type Tree = { leaf: boolean } | { and: Tree[] } | { or: Tree[] } | { not: Tree };
    const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.record({ leaf: fc.boolean() }),
        fc.record({ and: fc.array(tie('tree'), { minLength: 1, maxLength: 3 }) }),
        fc.record({ or: fc.array(tie('tree'), { minLength: 1, maxLength: 3 }) }),
        fc.record({ not: tie('tree') }),
      ),
    }));
    const toCondition = (t: Tree): Condition => {
      if ('leaf' in t) return { field: 'output.flag', eq: t.leaf };
      if ('and' in t) return { and: t.and.map(toCondition) };
      if ('or' in t) return { or: t.or.map(toCondition) };
      return { not: toCondition(t.not) };
    };
    const truth = (t: Tree, flag: boolean): boolean => {
      if ('leaf' in t) return t.leaf === flag;
      if ('and' in t) return t.and.every((x) => truth(x, flag));
      if ('or' in t) return t.or.some((x) => truth(x, flag));
      return !truth(t.not, flag);
    };
    fc.assert(
      fc.property(tree, fc.boolean(), (t, flag) => {
        expect(evaluateCondition(toCondition(t), ctx({ flag }))).toBe(truth(t, flag));
      }),
    );
  });
});

describe('readField', () => {
  it('reads roots and dotted paths, including array indices', () => {
    const c = ctx({ a: { b: [10, { c: 'deep' }] } }, { state: { x: 1 } });
    expect(readField(c, 'output.a.b.0')).toBe(10);
    expect(readField(c, 'output.a.b.1.c')).toBe('deep');
    expect(readField(c, 'state')).toEqual({ x: 1 });
    expect(readField(c, 'state.missing')).toBeUndefined();
    expect(readField(c, 'output.a.b.1.c.length')).toBeUndefined();
  });
});
