/**
 * Time-ordered identifiers: `<prefix>_<10 chars of ms time><16 chars of randomness>` in
 * Crockford base32 (ULID layout). Within one millisecond the random part is incremented, so
 * ids made by one generator sort in creation order.
 */
import type { Clock } from './clock.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export type IdPrefix = 'p' | 't' | 'int' | 's' | 'tr' | 'w' | 'lt' | 'ev';

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

function randomDigits(count: number): number[] {
  const bytes = new Uint8Array(count);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b % 32);
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
  const buf = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(buf);
  return Array.from(buf, (b) => b.toString(16).padStart(2, '0')).join('');
}
