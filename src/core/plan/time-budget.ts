/**
 * `warden exec --budget`: the time the plan's hook commands may spend in total, handed out the
 * way the kit's Rust broker hands out task budgets (reference B.8): a command reserves its
 * timeout before it starts — all of it or nothing — and gives back what it did not use when it
 * ends. A reservation can never overspend (the command is stopped at its reservation), so the
 * budget holds however many commands run at once.
 */
export class TimeBudget {
  readonly totalMs: number;
  #spentMs: number;
  #reservedMs = 0;

  /** `spentMs`: what earlier processes of the same run spent (read back on resume). */
  constructor(totalMs: number, spentMs = 0) {
    this.totalMs = totalMs;
    this.#spentMs = Math.max(0, spentMs);
  }

  /** What is neither spent nor reserved. */
  get remainingMs(): number {
    return Math.max(0, this.totalMs - this.#spentMs - this.#reservedMs);
  }

  /** Held by commands that are running (given back, in part, when they end). */
  get reservedMs(): number {
    return this.#reservedMs;
  }

  get spentMs(): number {
    return this.#spentMs;
  }

  /** Reserves `ms` if it all fits; false (and nothing changes) otherwise. */
  reserve(ms: number): boolean {
    if (!(ms > 0) || ms > this.remainingMs) return false;
    this.#reservedMs += ms;
    return true;
  }

  /** Ends a reservation: `usedMs` (at most the reservation) is spent, the rest given back. */
  settle(reservedMs: number, usedMs: number): void {
    this.#reservedMs = Math.max(0, this.#reservedMs - reservedMs);
    this.#spentMs += Math.min(Math.max(0, usedMs), reservedMs);
  }
}
