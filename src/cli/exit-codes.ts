/** Process exit codes of the `warden` command (documented in docs/cli.md). */
import type { ErrorCode } from '../core/index.ts';

export const EXIT = {
  OK: 0,
  /** Unexpected failure. */
  ERROR: 1,
  /** Bad input: flags, workflow file, config, parameters. */
  USAGE: 2,
  /** The run terminated with a reason other than `completed`. */
  RUN_FAILED: 3,
  /** The run is waiting for a person (an interrupt) and the command did not ask. */
  WAITING: 4,
  /** A named file, process, task or interrupt does not exist. */
  NOT_FOUND: 5,
  /** The database cannot be used: corrupt, from a newer Warden, busy, read-only for a write. */
  STORE: 6,
  /** The event log failed verification. */
  LEDGER_BROKEN: 7,
  /** The operation is not legal in the current state (e.g. an interrupt already resolved). */
  CONFLICT: 8,
  /** Denied: by the policy, a guard or a person. */
  DENIED: 9,
  /** Stopped by Ctrl-C (SIGINT) or SIGTERM; what was committed stays, `resume` continues. */
  INTERRUPTED: 130,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'INVALID_PARAMS':
    case 'POLICY_INVALID':
    case 'SECRET_MISSING':
    case 'WORKFLOW_INVALID':
    case 'CONFIG_INVALID':
    case 'PAYLOAD_TOO_LARGE':
      return EXIT.USAGE;
    case 'NOT_FOUND':
      return EXIT.NOT_FOUND;
    case 'STORE_CORRUPT':
    case 'STORE_TOO_NEW':
    case 'STORE_BUSY':
    case 'STORE_UNAVAILABLE':
    case 'STORE_READ_ONLY':
    case 'MIGRATION_MISMATCH':
      return EXIT.STORE;
    case 'LEDGER_BROKEN':
      return EXIT.LEDGER_BROKEN;
    case 'INVALID_STATE':
    case 'CONFLICT':
    case 'LEASE_LOST':
    case 'IDEMPOTENCY_CONFLICT':
    case 'ALREADY_EXISTS':
    case 'DAEMON_RUNNING':
      return EXIT.CONFLICT;
    case 'POLICY_DENIED':
    case 'GUARD_BLOCKED':
    case 'APPROVAL_DENIED':
      return EXIT.DENIED;
    default:
      return EXIT.ERROR;
  }
}
