/**
 * Time-ordered identifiers: `<prefix>_<10 chars of ms time><16 chars of randomness>` in
 * Crockford base32 (ULID layout). Within one millisecond the random part is incremented, so
 * ids made by one generator sort in creation order.
 */
import type { Clock } from './clock.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export type IdPrefix = 'p' | 't' | 'int' | 's' | 'tr' | 'w' | 'lt' | 'ev' | 'grt' | 'qtn';

export class IdGenerator {
  readonly #clock: Clock;
  #lastMs = -1;
  #lastRandom: number[] = [];

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  next(prefix: IdPrefix): string {
    const ms = this.#clock.now();
    if (ms <= this.#lastMs) {
      increment(this.#lastRandom);
    } else {
      this.#lastMs = ms;
      this.#lastRandom = randomDigits(16);
    }
    return `${prefix}_${encodeTime(this.#lastMs)}${this.#lastRandom.map((d) => ALPHABET[d]).join('')}`;
  }
}

function encodeTime(ms: number): string {
  let out = '';
  let value = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[value % 32]! + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/**
 * Random bytes from a pool refilled 4 KiB at a time: one getRandomValues call per id or token
 * costs more than the rest of making it.
 */
const pool = new Uint8Array(4096);
let poolAt = pool.length;
function randomBytes(count: number): Uint8Array {
  if (poolAt + count > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolAt = 0;
  }
  const out = pool.slice(poolAt, poolAt + count);
  pool.fill(0, poolAt, poolAt + count); // a token's bytes do not linger in the pool
  poolAt += count;
  return out;
}

function randomDigits(count: number): number[] {
  return Array.from(randomBytes(count), (b) => b % 32);
}

function increment(digits: number[]): void {
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i]! < 31) {
      digits[i] = digits[i]! + 1;
      return;
    }
    digits[i] = 0;
  }
}

/** A random hex token (lease tokens, auth tokens). */
export function randomToken(bytes = 16): string {
  if (bytes > pool.length) throw new RangeError(`randomToken: at most ${pool.length} bytes`);
  return Buffer.from(randomBytes(bytes)).toString('hex');
}
