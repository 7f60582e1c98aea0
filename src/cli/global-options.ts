/** Options every command accepts (see `warden --help`). */
export interface GlobalOptions {
  readonly home?: string;
  readonly db?: string;
  readonly durability?: string;
  readonly json?: boolean;
}
