/**
 * Named services (DESIGN.md §5): type, capabilities, max concurrency, current load and health.
 * `dispatch` picks a healthy service with spare capacity, runs the call with a timeout and
 * retries on another service when one fails. Workers register themselves here.
 */
import { WardenError } from '../core/index.ts';

export const HEALTH = ['healthy', 'degraded', 'unhealthy', 'unknown'] as const;
export type Health = (typeof HEALTH)[number];

export interface ServiceInfo {
  readonly name: string;
  readonly type: string;
  readonly capabilities: readonly string[];
  readonly maxConcurrency: number;
  load: number;
  health: Health;
  readonly registeredAt: number;
}

export type ServiceCall = (request: unknown, signal: AbortSignal) => Promise<unknown>;

export class ServiceRegistry {
  readonly #services = new Map<string, { info: ServiceInfo; call: ServiceCall | null }>();

  register(
    info: Omit<ServiceInfo, 'load' | 'health' | 'registeredAt'> & { health?: Health },
    call: ServiceCall | null = null,
  ): void {
    if (info.maxConcurrency <= 0)
      throw new WardenError('INVALID_PARAMS', 'maxConcurrency must be a positive integer');
    this.#services.set(info.name, {
      info: { ...info, load: 0, health: info.health ?? 'unknown', registeredAt: Date.now() },
      call,
    });
  }

  unregister(name: string): boolean {
    return this.#services.delete(name);
  }

  setHealth(name: string, health: Health): void {
    const entry = this.#services.get(name);
    if (!entry) throw new WardenError('NOT_FOUND', `service '${name}' is not registered`);
    entry.info.health = health;
  }

  list(filter: { type?: string; capability?: string } = {}): ServiceInfo[] {
    return [...this.#services.values()]
      .map((e) => e.info)
      .filter(
        (s) =>
          (!filter.type || s.type === filter.type) &&
          (!filter.capability || s.capabilities.includes(filter.capability)),
      );
  }

  /** Runs `request` on a suitable service; tries up to `retries + 1` services. */
  async dispatch(
    filter: { type?: string; capability?: string },
    request: unknown,
    options: { timeoutMs?: number; retries?: number } = {},
  ): Promise<unknown> {
    const tried = new Set<string>();
    const attempts = (options.retries ?? 1) + 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const entry = [...this.#services.values()]
        .filter((e) => e.call && !tried.has(e.info.name))
        .filter((e) => e.info.health !== 'unhealthy' && e.info.load < e.info.maxConcurrency)
        .filter(
          (e) =>
            (!filter.type || e.info.type === filter.type) &&
            (!filter.capability || e.info.capabilities.includes(filter.capability)),
        )
        .sort(
          (a, b) =>
            rank(a.info.health) - rank(b.info.health) ||
            a.info.load / a.info.maxConcurrency - b.info.load / b.info.maxConcurrency,
        )[0];
      if (!entry) break;
      tried.add(entry.info.name);
      entry.info.load += 1;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 30_000);
      try {
        return await entry.call!(request, controller.signal);
      } catch (error) {
        lastError = error;
      } finally {
        clearTimeout(timer);
        entry.info.load -= 1;
      }
    }
    throw new WardenError(
      lastError ? 'INTERNAL' : 'NOT_FOUND',
      lastError
        ? `every matching service failed: ${String((lastError as Error).message ?? lastError)}`
        : 'no healthy service with spare capacity matches',
      { cause: lastError, details: { ...filter, tried: [...tried] } },
    );
  }
}

function rank(health: Health): number {
  return HEALTH.indexOf(health);
}
