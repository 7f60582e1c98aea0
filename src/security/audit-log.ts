/**
 * The audit log's writer (DESIGN.md §4, §8): every decision — allow, deny, ask — with its
 * reasons, principal, resource, trace id and policy version, appended to the store's
 * hash-chained audit table (separate from the event log). Calls that arrive together share
 * one transaction; each caller is answered once its records are committed, so an action is
 * never taken before its decision is on record.
 */
import type { AuditRecord } from '../core/index.ts';
import type { Store } from '../store/index.ts';
import type { AuditEntry } from './tool-path.ts';

type NewAuditRecord = Omit<AuditRecord, 'seq' | 'prev_hash' | 'hash'>;

/** Records at most this many per transaction. */
const BATCH = 500;

export class AuditLog {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #redact: <T>(value: T) => T;
  #pending: Array<{ record: NewAuditRecord; done: (error?: Error) => void }> = [];
  #flushing: Promise<void> | null = null;

  constructor(store: Store, now: () => number, redact: <T>(value: T) => T = (v) => v) {
    this.#store = store;
    this.#now = now;
    this.#redact = redact;
  }

  /** Appends decisions; resolves when they are committed. */
  record(entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const ts = this.#now();
    const waits = entries.map(
      (entry) =>
        new Promise<void>((resolve, reject) => {
          this.#pending.push({
            record: this.#redact({
              ts,
              trace_id: entry.trace_id,
              principal: entry.request.principal,
              action: entry.request.action,
              resource: entry.request.resource,
              decision: entry.result.decision,
              decided: entry.result.decided,
              reasons: [...entry.result.reasons],
              policy_version: entry.result.policy_version,
              context: {
                ...entry.context,
                ...(entry.result.grant_id ? { grant_id: entry.result.grant_id } : {}),
                mode: entry.result.mode,
              },
            }),
            done: (error) => (error === undefined ? resolve() : reject(error)),
          });
        }),
    );
    this.#flushing ??= this.#drain();
    return Promise.all(waits).then(() => undefined);
  }

  /** Resolves once everything recorded so far is committed. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    // Let the callers of this tick join the batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, BATCH);
        try {
          await this.#store.commit([{ op: 'audit.append', records: batch.map((b) => b.record) }]);
          for (const b of batch) b.done();
        } catch (error) {
          const failure = error instanceof Error ? error : new Error('audit append failed');
          for (const b of batch) b.done(failure);
        }
      }
    } finally {
      this.#flushing = null;
    }
  }
}
