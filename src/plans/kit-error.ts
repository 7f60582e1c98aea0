/**
 * A failure `warden plan`/`warden exec` reports the way the NOA kit does: one `[error] …` line
 * on stderr and the kit's exit code (reference A.2) — no Warden error envelope, because the
 * kit's users match these lines in scripts.
 */
import type { ErrorCode } from '../core/index.ts';

export class KitError extends Error {
  readonly exitCode: number;
  /** The Warden error code `--json` output carries. */
  readonly code: ErrorCode;

  constructor(message: string, exitCode = 1, code: ErrorCode = 'INVALID_PARAMS') {
    super(message);
    this.name = 'KitError';
    this.exitCode = exitCode;
    this.code = code;
  }
}
