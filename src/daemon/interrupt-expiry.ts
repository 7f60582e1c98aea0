/**
 * Applies interrupt expiry when it is due: one timer armed for the kernel's next deadline,
 * re-armed whenever the database changes (a new interrupt, from any process). No polling.
 */
import { coerceError, type WardenError } from '../core/index.ts';
import type { Kernel } from '../kernel/index.ts';

export class InterruptExpiry {
  readonly #kernel: Kernel;
  readonly #onError: (error: WardenError) => void;
  #timer: NodeJS.Timeout | undefined;
  #off: (() => void) | null = null;
  #busy = false;
  #again = false;

  constructor(kernel: Kernel, onError: (error: WardenError) => void) {
    this.#kernel = kernel;
    this.#onError = onError;
  }

  start(): void {
    this.#off = this.#kernel.store.watchChanges(() => void this.#arm());
    void this.#arm();
  }

  stop(): void {
    this.#off?.();
    this.#off = null;
    clearTimeout(this.#timer);
  }

  async #arm(): Promise<void> {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    try {
      do {
        this.#again = false;
        const next = await this.#kernel.nextDeadline();
        clearTimeout(this.#timer);
        if (next === null || this.#off === null) continue;
        const wait = next - this.#kernel.clock.now();
        if (wait <= 0) {
          await this.#kernel.interrupts.expireDue();
          this.#again = true;
          continue;
        }
        this.#timer = setTimeout(() => void this.#arm(), Math.min(wait, 2_147_000_000));
        this.#timer.unref();
      } while (this.#again && this.#off !== null);
    } catch (error) {
      this.#onError(coerceError(error));
    } finally {
      this.#busy = false;
    }
  }
}
