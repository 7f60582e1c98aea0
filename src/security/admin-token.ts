/**
 * The admin token: a random secret in `WARDEN_HOME/auth.token` (mode 0600), generated on first
 * use (or by `warden init`). Whoever can read the file is the home's owner and holds every
 * scope. It is never printed or logged; clients read it from the file.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

import { TOKEN_SCOPES, type TokenScope, WardenError } from '../core/index.ts';

/** What {@link ensureAdminToken} found or made. */
export interface AdminToken {
  /** The secret (trimmed file content). Never log it. */
  readonly token: string;
  readonly file: string;
  /** True when this call generated the file. */
  readonly created: boolean;
  /** The file's permission bits, e.g. 0o600. */
  readonly mode: number;
  /**
   * True when group or others may read or write the file (mode & 0o077): anyone in that group
   * could act as admin. A daemon should refuse to start, or at least warn naming
   * `chmod 600 <file>`.
   */
  readonly insecure: boolean;
}

/** The scopes of the admin token: all of them. */
export const ADMIN_SCOPES: readonly TokenScope[] = TOKEN_SCOPES;

/** A new admin secret: 32 random bytes, base64url (the format `warden init` writes). */
export function newAdminSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Reads the admin token of `home` (`<home>/auth.token`, or `file`), creating it (mode 0600,
 * with the home directory, 0700, when missing) on first use. Creation is exclusive: of two
 * processes starting at once, one writes and both read the same token. CONFIG_INVALID when the
 * file exists but is empty.
 */
export function ensureAdminToken(home: string, file = join(home, 'auth.token')): AdminToken {
  let created = false;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, `${newAdminSecret()}\n`);
    } finally {
      closeSync(fd);
    }
    chmodSync(file, 0o600); // the umask may have taken bits away; never added
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const token = readFileSync(file, 'utf8').trim();
  if (token === '')
    throw new WardenError(
      'CONFIG_INVALID',
      `the admin token file ${file} is empty; delete it to generate a new one, or run 'warden init --force'`,
      { details: { file } },
    );
  const mode = statSync(file).mode & 0o777;
  return { token, file, created, mode, insecure: (mode & 0o077) !== 0 };
}

/**
 * True when `presented` is the admin token. Constant time: both sides are hashed to 32 bytes
 * first, so neither their contents nor their lengths show in the timing.
 */
export function verifyAdmin(presented: string, fileToken: string): boolean {
  return sameSecret(presented, fileToken);
}

/**
 * Constant-time equality of two secrets (compared as sha256 digests, so their lengths leak
 * nothing either). False when either is not a string or `expected` is empty.
 */
export function sameSecret(presented: string, expected: string): boolean {
  if (typeof presented !== 'string' || typeof expected !== 'string' || expected === '')
    return false;
  return timingSafeEqual(sha256(presented), sha256(expected));
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
