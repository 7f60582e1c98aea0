/**
 * What a command runs against (the daemon's kernel, queue and remote-work API) and who calls it.
 * Protocols build a {@link Caller} from their own authentication and call {@link dispatch}; the
 * commands themselves know nothing about the wire.
 */
import { hasScope as scopeAllows } from '../../core/index.ts';
import type { Kernel } from '../../kernel/index.ts';
import type { JobQueue, RemoteWork } from '../../queue/index.ts';
import type { Security } from '../../security/index.ts';
import type { Scope } from './schemas.ts';

export interface CommandServices {
  readonly kernel: Kernel;
  readonly queue: JobQueue;
  readonly remote: RemoteWork;
  /** The policy decision point, audit, grants: every method is authorized through it. */
  readonly security?: Security;
}

/** Who is calling: the admin token, an API token, or a remote worker's attempt token. */
export interface Caller {
  readonly kind: 'admin' | 'token' | 'attempt';
  readonly id: string;
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  /** For an attempt token: the only attempt it may act on. */
  readonly attempt?: { readonly taskId: string; readonly leaseToken: string };
  /** Names what this caller's remote claims are owned by (the lease owner). */
  readonly connectionId: string;
}

export function hasScope(caller: Caller, scope: Scope): boolean {
  return scopeAllows([...caller.scopes], scope);
}
