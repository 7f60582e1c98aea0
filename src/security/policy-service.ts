/**
 * The policy as the daemon and CLI run it: files from WARDEN_HOME compiled by the PDP, each
 * version persisted in the store BEFORE it becomes active (invariant §2.5), validate-then-swap
 * reloads (an invalid file keeps the previous version and says why), versions pinned per
 * attempt (an old version is read back from the store when an attempt needs it), and the
 * capability grants the PDP consults, refreshed from the store whenever it changes (any
 * process, any node).
 */
import {
  type Clock,
  coerceError,
  type DecisionRequest,
  type DecisionResult,
  type GrantRecord,
  type MethodScopeTable,
  WardenError,
} from '../core/index.ts';
import type { Kernel } from '../kernel/index.ts';
import type { Store } from '../store/index.ts';
import { InMemoryGrantIndex, PolicyDecisionPoint, readPolicyFiles } from './policy/index.ts';
import type { PinnedPolicy } from './tool-path.ts';

/** At most one grant re-read per this many ms for changes made by other processes. */
const GRANT_REFRESH_MS = 1_000;

export interface PolicyServiceOptions {
  readonly kernel: Kernel;
  /** WARDEN_HOME: `policy.yaml` and `policies/*.{cedar,yaml}`; null for no files (deny all). */
  readonly home: string | null;
  /** ACP method → scope, so the built-in policies can authorize protocol calls. */
  readonly methodScopes?: MethodScopeTable;
}

export interface ReloadOutcome {
  readonly version: string;
  readonly previous: string;
  readonly changed: boolean;
  readonly files: readonly string[];
}

export class PolicyService {
  readonly pdp: PolicyDecisionPoint;
  readonly grants = new InMemoryGrantIndex();
  readonly #kernel: Kernel;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #home: string | null;
  #files: readonly string[] = [];
  #unwatch: (() => void) | null = null;
  #refreshing: Promise<void> | null = null;
  #refreshAgain = false;
  #reloading: Promise<unknown> = Promise.resolve();

  private constructor(options: PolicyServiceOptions) {
    this.#kernel = options.kernel;
    this.#store = options.kernel.store;
    this.#clock = options.kernel.clock;
    this.#home = options.home;
    this.pdp = new PolicyDecisionPoint({
      grants: this.grants,
      clock: this.#clock,
      ...(options.methodScopes ? { methodScopes: options.methodScopes } : {}),
    });
  }

  /**
   * Loads the policy files (POLICY_INVALID when one is invalid: there is no previous version to
   * keep at start), persists and activates the version, loads the grants, and follows grant
   * changes made by any process.
   */
  static async open(options: PolicyServiceOptions): Promise<PolicyService> {
    const service = new PolicyService(options);
    await service.#activate(service.#read(), true);
    await service.refreshGrants();
    // Grant changes in this process are seen at once; another process's at most a second
    // later. Either way a revoked grant is refused at its next use: spending a grant is a
    // compare-and-set in the store (grant.use), whatever this index still believes.
    const offLocal = service.#store.onCommit((events) => {
      if (events.some((e) => e.type.startsWith('grant.'))) service.#scheduleRefresh();
    });
    let timer: NodeJS.Timeout | null = null;
    const offRemote = service.#store.watchChanges(() => {
      timer ??= setTimeout(() => {
        timer = null;
        service.#scheduleRefresh();
      }, GRANT_REFRESH_MS).unref();
    });
    service.#unwatch = () => {
      offLocal();
      offRemote();
      if (timer) clearTimeout(timer);
    };
    return service;
  }

  get version(): string {
    return this.pdp.version;
  }

  get files(): readonly string[] {
    return this.#files;
  }

  /** Decides under the active version. */
  decide(request: DecisionRequest): DecisionResult {
    return this.pdp.decide(request, { now: this.#clock.now() });
  }

  /** Pins the active version for one attempt (decisions keep using it after a reload). */
  pin(): Promise<PinnedPolicy> {
    const version = this.pdp.version;
    return Promise.resolve({
      version,
      // More than `retainVersions` reloads during the attempt drop it from memory, not the store.
      ensure: () => this.ensureVersion(version),
      decide: (request) => this.pdp.decide(request, { version, now: this.#clock.now() }),
    });
  }

  /** Makes a stored version available to decide under (an attempt pinned to it). */
  async ensureVersion(version: string): Promise<void> {
    if (this.pdp.has(version)) return;
    const stored = await this.#store.getPolicyVersion(version);
    if (!stored)
      throw new WardenError('NOT_FOUND', `policy version ${version} is not in the store`);
    this.pdp.retain(this.pdp.load({ ...stored.source }, { baseDir: this.#home ?? '.' }));
  }

  /**
   * Validate-then-swap: reads the files again; an invalid one changes nothing (the previous
   * version keeps deciding; a `policy.reload_failed` event says why) and throws POLICY_INVALID.
   * Reloads run one at a time (the file watcher and `policy.reload` may overlap): otherwise an
   * older read could be activated after a newer one.
   */
  reload(): Promise<ReloadOutcome> {
    const run = this.#reloading.then(() => this.#reloadNow());
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reloadNow(): Promise<ReloadOutcome> {
    const previous = this.pdp.version;
    let files: Record<string, string>;
    try {
      files = this.#read();
      const outcome = await this.#activate(files, false);
      return { ...outcome, previous };
    } catch (error) {
      const failure = coerceError(error);
      await this.#systemEvent('policy.reload_failed', {
        error: { code: failure.code, message: failure.message },
        version: previous,
      }).catch(() => undefined);
      throw failure;
    }
  }

  /** Re-reads the active grants from the store (the PDP consults them). */
  async refreshGrants(): Promise<void> {
    const grants: GrantRecord[] = await this.#store.listGrants({
      activeAt: this.#clock.now(),
      limit: 100_000,
    });
    this.grants.replace(grants);
  }

  close(): void {
    this.#unwatch?.();
    this.#unwatch = null;
  }

  #read(): Record<string, string> {
    return this.#home ? readPolicyFiles(this.#home) : {};
  }

  async #activate(
    files: Record<string, string>,
    atStart: boolean,
  ): Promise<{ version: string; changed: boolean; files: readonly string[] }> {
    const prepared = this.pdp.load(files, { baseDir: this.#home ?? '.' });
    const previous = this.pdp.version;
    const changed = atStart || prepared.version !== previous;
    if (changed) {
      const now = this.#clock.now();
      // Persisted before it decides anything (invariant §2.5), with its activation event.
      const system = await this.#kernel.sessions.system();
      await this.#store.commit([
        {
          op: 'policy.version',
          id: prepared.version,
          source: files,
          loaded_at: now,
          activate: true,
          now,
        },
        {
          op: 'event',
          event: {
            session_id: system.id,
            type: 'policy.activated',
            trace_id: this.#kernel.ids.next('tr'),
            data: { version: prepared.version, previous, files: Object.keys(files) },
          },
        },
      ]);
      this.pdp.activate(prepared);
    }
    this.#files = Object.keys(files);
    return { version: prepared.version, changed, files: this.#files };
  }

  #scheduleRefresh(): void {
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return;
    }
    this.#refreshing = this.refreshGrants()
      .catch(() => undefined)
      .finally(() => {
        this.#refreshing = null;
        if (this.#refreshAgain) {
          this.#refreshAgain = false;
          this.#scheduleRefresh();
        }
      });
  }

  async #systemEvent(type: 'policy.reload_failed', data: Record<string, unknown>): Promise<void> {
    const system = await this.#kernel.sessions.system();
    await this.#store.commit([
      {
        op: 'event',
        event: { session_id: system.id, type, trace_id: this.#kernel.ids.next('tr'), data },
      },
    ]);
  }
}
