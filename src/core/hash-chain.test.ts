import { createHash } from 'node:crypto';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  type ChainedEventBody,
  findChainBreak,
  GENESIS_HASH,
  hashEvent,
  sha256Hex,
} from './hash-chain.ts';
import { canonicalJson } from './json.ts';

type ChainedEvent = ChainedEventBody & { readonly hash: string };

/** What a caller supplies; seq, prev_hash and hash are filled in by {@link buildChain}. */
type EventSeed = Omit<ChainedEventBody, 'seq' | 'prev_hash'>;

const leafArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.boolean(),
  fc.constant(null),
);
const dataArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), leafArb, { minKeys: 1, maxKeys: 5 }),
  fc.dictionary(
    fc.string({ minLength: 1, maxLength: 6 }),
    fc.oneof(leafArb, fc.array(leafArb, { maxLength: 4 })),
    { minKeys: 1, maxKeys: 4 },
  ),
);

const seedArb: fc.Arbitrary<EventSeed> = fc.record({
  session_id: fc.string({ minLength: 1, maxLength: 10 }),
  type: fc.constantFrom('process.created', 'stage.started', 'stage.completed', 'route.taken'),
  ts: fc.integer({ min: 0, max: 2 ** 45 }),
  trace_id: fc.string({ minLength: 1, maxLength: 10 }),
  process_id: fc.option(fc.string({ minLength: 1, maxLength: 10 }), { nil: null }),
  task_id: fc.option(fc.string({ minLength: 1, maxLength: 10 }), { nil: null }),
  attempt: fc.option(fc.integer({ min: 1, max: 9 }), { nil: null }),
  data: dataArb,
});

function buildChain(
  seeds: readonly EventSeed[],
  from = { seq: 0, hash: GENESIS_HASH },
): ChainedEvent[] {
  const out: ChainedEvent[] = [];
  let prev = from.hash;
  seeds.forEach((seed, i) => {
    const body: ChainedEventBody = { ...seed, seq: from.seq + i + 1, prev_hash: prev };
    const hash = hashEvent(body);
    out.push({ ...body, hash });
    prev = hash;
  });
  return out;
}

const chainArb = fc
  .array(seedArb, { minLength: 1, maxLength: 12 })
  .map((seeds) => buildChain(seeds));

/** Replaces the character at `index` with `replacement`. */
function replaceAt(text: string, index: number, replacement: string): string {
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

/** Changes one character of a non-empty string to a guaranteed different one. */
function flipChar(text: string, position: number, pick: number): string {
  const index = position % text.length;
  const alphabet = 'abcdefXYZ0189_-. ';
  const current = text[index];
  const candidates = [...alphabet].filter((c) => c !== current);
  return replaceAt(text, index, candidates[pick % candidates.length]!);
}

const HEX = '0123456789abcdef';
function flipHex(hash: string, position: number, pick: number): string {
  const index = position % hash.length;
  const candidates = [...HEX].filter((c) => c !== hash[index]);
  return replaceAt(hash, index, candidates[pick % candidates.length]!);
}

const FIELDS = [
  'session_id',
  'type',
  'trace_id',
  'ts',
  'seq',
  'hash',
  'prev_hash',
  'data',
  'attempt',
  'process_id',
  'task_id',
] as const;
type Field = (typeof FIELDS)[number];

/** Tampers one field of one event so that the event is guaranteed to differ. */
function tamperField(
  event: ChainedEvent,
  field: Field,
  position: number,
  pick: number,
): ChainedEvent | null {
  switch (field) {
    case 'session_id':
    case 'type':
    case 'trace_id':
      return { ...event, [field]: flipChar(event[field], position, pick) };
    case 'process_id':
    case 'task_id': {
      const value = event[field];
      return { ...event, [field]: value === null ? 'x' : flipChar(value, position, pick) };
    }
    case 'ts':
      return { ...event, ts: event.ts + 1 + (pick % 1000) };
    case 'seq':
      return { ...event, seq: event.seq + 1 + (pick % 3) };
    case 'attempt':
      return { ...event, attempt: event.attempt === null ? 1 : event.attempt + 1 };
    case 'hash':
      return { ...event, hash: flipHex(event.hash, position, pick) };
    case 'prev_hash':
      return { ...event, prev_hash: flipHex(event.prev_hash, position, pick) };
    case 'data': {
      // Flip one character of the data's JSON; keep only edits that still parse and change the value.
      const text = canonicalJson(event.data);
      const edited = flipChar(text, position, pick);
      let parsed: unknown;
      try {
        parsed = JSON.parse(edited);
      } catch {
        return null;
      }
      if (canonicalJson(parsed) === text) return null;
      return { ...event, data: parsed };
    }
  }
}

describe('hash chain', () => {
  it('hashEvent is sha256(prev_hash ‖ canonical_json(body))', () => {
    const body: ChainedEventBody = {
      session_id: 's_1',
      seq: 1,
      type: 'process.created',
      ts: 1_700_000_000_000,
      trace_id: 'tr_1',
      process_id: null,
      task_id: null,
      attempt: null,
      data: { b: 1, a: [1, 2] },
      prev_hash: GENESIS_HASH,
    };
    const expected = createHash('sha256')
      .update(GENESIS_HASH + canonicalJson(body))
      .digest('hex');
    expect(hashEvent(body)).toBe(expected);
    expect(hashEvent(body)).toMatch(/^[0-9a-f]{64}$/);
    expect(GENESIS_HASH).toBe('0'.repeat(64));
    expect(sha256Hex('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('property: an honestly built chain of N events verifies', () => {
    fc.assert(
      fc.property(chainArb, (chain) => {
        expect(findChainBreak(chain)).toBeNull();
        // Every link is what the chain says it is.
        chain.forEach((event, i) => {
          expect(event.seq).toBe(i + 1);
          expect(event.prev_hash).toBe(i === 0 ? GENESIS_HASH : chain[i - 1]!.hash);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('an empty chain verifies', () => {
    expect(findChainBreak([])).toBeNull();
  });

  it('property: tampering with any field of any event is detected at or before that event', () => {
    fc.assert(
      fc.property(
        chainArb,
        fc.nat(),
        fc.constantFrom(...FIELDS),
        fc.nat(),
        fc.nat(),
        (chain, which, field, position, pick) => {
          const index = which % chain.length;
          const original = chain[index]!;
          const tampered = tamperField(original, field, position, pick);
          fc.pre(tampered !== null);
          expect(canonicalJson(tampered)).not.toBe(canonicalJson(original));
          const forged = chain.map((e, i) => (i === index ? tampered : e));
          const found = findChainBreak(forged);
          expect(found).not.toBeNull();
          expect(found!.seq).toBeLessThanOrEqual(original.seq);
          // Nothing before the tampered event changed, so the break is exactly there.
          expect(found!.seq).toBe(original.seq);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: flipping any single character of an event’s serialised form is detected', () => {
    const replacementArb = fc.constantFrom(...'abcz0159 -_.:,"{}[]\\eEn');
    fc.assert(
      fc.property(
        chainArb,
        fc.nat(),
        fc.nat(),
        replacementArb,
        (chain, which, position, replacement) => {
          const index = which % chain.length;
          const original = chain[index]!;
          const text = JSON.stringify(original);
          const at = position % text.length;
          fc.pre(text[at] !== replacement);
          let parsed: unknown;
          try {
            parsed = JSON.parse(replaceAt(text, at, replacement));
          } catch {
            fc.pre(false);
          }
          // An edit that only changes the spelling (e.g. insignificant whitespace) is not tampering.
          fc.pre(canonicalJson(parsed) !== canonicalJson(original));
          const forged = chain.map((e, i) => (i === index ? (parsed as ChainedEvent) : e));
          const found = findChainBreak(forged);
          expect(found).not.toBeNull();
          expect(found!.seq).toBeLessThanOrEqual(original.seq);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('reports the kind of break', () => {
    const chain = buildChain([
      {
        session_id: 's',
        type: 'a',
        ts: 1,
        trace_id: 't',
        process_id: null,
        task_id: null,
        attempt: null,
        data: { n: 1 },
      },
      {
        session_id: 's',
        type: 'b',
        ts: 2,
        trace_id: 't',
        process_id: 'p',
        task_id: null,
        attempt: null,
        data: { n: 2 },
      },
      {
        session_id: 's',
        type: 'c',
        ts: 3,
        trace_id: 't',
        process_id: 'p',
        task_id: 't1',
        attempt: 1,
        data: { n: 3 },
      },
    ]);
    expect(findChainBreak(chain)).toBeNull();

    const dropped = [chain[0]!, chain[2]!];
    expect(findChainBreak(dropped)).toEqual({
      seq: 2,
      reason: 'seq_gap',
      expected: '2',
      actual: '3',
    });

    const edited = chain.map((e, i) => (i === 1 ? { ...e, data: { n: 20 } } : e));
    expect(findChainBreak(edited)).toMatchObject({
      seq: 2,
      reason: 'hash_mismatch',
      actual: chain[1]!.hash,
    });

    const relinked = chain.map((e, i) => (i === 2 ? { ...e, prev_hash: GENESIS_HASH } : e));
    expect(findChainBreak(relinked)).toEqual({
      seq: 3,
      reason: 'prev_hash_mismatch',
      expected: chain[1]!.hash,
      actual: GENESIS_HASH,
    });

    // A rehashed forgery of one event still breaks the next link.
    const forgedBody = { ...chain[1]!, data: { n: 99 } };
    const { hash: _old, ...forgedRest } = forgedBody;
    const rehashed = { ...forgedRest, hash: hashEvent(forgedRest) };
    expect(findChainBreak([chain[0]!, rehashed, chain[2]!])).toMatchObject({
      seq: 3,
      reason: 'prev_hash_mismatch',
    });
  });

  it('verification can continue from a known-good head', () => {
    fc.assert(
      fc.property(fc.array(seedArb, { minLength: 2, maxLength: 8 }), fc.nat(), (seeds, cut) => {
        const chain = buildChain(seeds);
        const split = 1 + (cut % (chain.length - 1));
        const head = chain[split - 1]!;
        const tail = chain.slice(split);
        expect(findChainBreak(tail, { seq: head.seq, hash: head.hash })).toBeNull();
        // Without the head, the tail does not verify from genesis.
        expect(findChainBreak(tail)).toMatchObject({ seq: 1, reason: 'seq_gap' });
        // With a wrong head hash, the first tail event's prev_hash does not match.
        expect(findChainBreak(tail, { seq: head.seq, hash: GENESIS_HASH })).toMatchObject({
          seq: head.seq + 1,
          reason: 'prev_hash_mismatch',
        });
      }),
      { numRuns: 100 },
    );
  });
});

/** Rebuilds a JSON value with every object's keys in a pseudo-random order. */
function shuffleKeys(value: unknown, seed: number): unknown {
  let state = seed >>> 0 || 1;
  const nextRandom = (): number => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const entries = Object.entries(v).map(([k, x]) => [k, walk(x)] as const);
    for (let i = entries.length - 1; i > 0; i--) {
      const j = Math.floor(nextRandom() * (i + 1));
      [entries[i], entries[j]] = [entries[j]!, entries[i]!];
    }
    return Object.fromEntries(entries);
  };
  return walk(value);
}

describe('canonicalJson', () => {
  it('sorts keys, drops undefined members and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
    expect(canonicalJson([undefined, Number.NaN, Number.POSITIVE_INFINITY])).toBe(
      '[null,null,null]',
    );
    expect(canonicalJson('a"b')).toBe('"a\\"b"');
  });

  it('property: key order never changes the serialisation', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (value, seed) => {
        const shuffled = shuffleKeys(value, seed);
        expect(canonicalJson(shuffled)).toBe(canonicalJson(value));
      }),
      { numRuns: 300 },
    );
  });

  it('property: the serialisation is valid JSON for the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toStrictEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 300 },
    );
  });

  it('property: events that differ only in key order hash the same', () => {
    fc.assert(
      fc.property(seedArb, fc.integer(), (seed, shuffle) => {
        const body: ChainedEventBody = { ...seed, seq: 1, prev_hash: GENESIS_HASH };
        expect(hashEvent(shuffleKeys(body, shuffle) as ChainedEventBody)).toBe(hashEvent(body));
      }),
      { numRuns: 200 },
    );
  });
});
