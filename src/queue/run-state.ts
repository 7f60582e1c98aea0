/**
 * Start/stop bookkeeping shared by the workers, so neither can race:
 *
 *   stopped ──start()──▶ starting ──ok──▶ running ──stop()──▶ stopped
 *                           │ fails: teardown, back to stopped (start() may be called again)
 *
 * `start()` while starting or running returns the same start; `stop()` while starting waits for
 * the start to finish first, so nothing a start sets going is left running after stop.
 */
export class RunState {
  #running = false;
  #starting: Promise<void> | null = null;

  /** True from `start()` until `stop()` begins (background parts check it before new work). */
  get running(): boolean {
    return this.#running;
  }

  /** Runs `start` once; if it fails, runs `teardown` and goes back to stopped. */
  start(start: () => Promise<void>, teardown: () => Promise<void>): Promise<void> {
    if (this.#running) return this.#starting ?? Promise.resolve();
    this.#running = true;
    const starting = start().then(
      () => {
        this.#starting = null;
      },
      async (error: unknown) => {
        this.#starting = null;
        await teardown();
        this.#running = false;
        throw error;
      },
    );
    this.#starting = starting;
    return starting;
  }

  /** Waits for a start in progress; true when the caller should stop (now marked stopping). */
  async beginStop(): Promise<boolean> {
    await this.#starting?.catch(() => undefined);
    if (!this.#running) return false;
    this.#running = false;
    return true;
  }
}
