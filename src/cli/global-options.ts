/** Options every command accepts (see `warden --help`). */
export interface GlobalOptions {
  readonly home?: string;
  readonly db?: string;
  readonly durability?: string;
  readonly json?: boolean;
  /** The daemon to use (env WARDEN_URL); see daemon-target.ts. */
  readonly url?: string;
  /** Never use a daemon (env WARDEN_DIRECT=1). */
  readonly direct?: boolean;
}
