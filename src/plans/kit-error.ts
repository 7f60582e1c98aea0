/**
 * A failure `warden plan`/`warden exec` reports the way the NOA kit does: one `[error] …` line
 * on stderr and the kit's exit code (reference A.2) — no Warden error envelope, because the
 * kit's users match these lines in scripts.
 */
export class KitError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'KitError';
    this.exitCode = exitCode;
  }
}
