/** The scheduler's ordering lives in core (pure); the kernel re-exports it. */
export { DEFAULT_AGING_MS, sortKey } from '../core/sort-key.ts';
