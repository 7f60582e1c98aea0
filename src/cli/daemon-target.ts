/**
 * Whether a command goes through a Warden daemon (ACP) or works on the database directly.
 *
 * Precedence, first match wins:
 * 1. `--direct` (or `WARDEN_DIRECT=1`): the database.
 * 2. `--url` (or `WARDEN_URL`): that daemon. Unreachable is DAEMON_UNREACHABLE — never a silent
 *    fall back to a local database, which may not be the one the user named.
 * 3. A daemon running on this home and serving this database (`WARDEN_HOME/daemon.json`): it.
 *    If it does not answer (it is stopping, or its pid was reused), the database.
 * 4. The database.
 *
 * The token is `WARDEN_TOKEN`, else the home's `auth.token`; never a flag (a flag ends up in
 * shell history and `ps`). Going through the daemon matters for writes: its worker wakes at once
 * and its token scopes apply. Reading the database directly while a daemon runs is safe.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { WardenClient } from '../client/index.ts';
import { isWardenError, WardenError } from '../core/index.ts';
import { redactUrl } from '../store/index.ts';
import { loadConfig } from './config.ts';
import { readRunningDaemon } from './daemon-file.ts';
import type { GlobalOptions } from './global-options.ts';
import { style } from './output.ts';
import { VERSION } from './version.ts';

export type DaemonTarget =
  | { readonly kind: 'direct' }
  | {
      readonly kind: 'daemon';
      readonly url: string;
      readonly token: string;
      /** Where the URL came from: `--url`, `WARDEN_URL`, or the home's `daemon.json`. */
      readonly source: 'flag' | 'env' | 'discovered';
      /** The daemon serves this home's database, so the database can be used instead. */
      readonly local: boolean;
    };

/** The environment variables {@link resolveDaemonTarget} reads. */
export interface TargetEnv {
  readonly WARDEN_URL?: string | undefined;
  readonly WARDEN_TOKEN?: string | undefined;
  readonly WARDEN_DIRECT?: string | undefined;
}

export function resolveDaemonTarget(
  options: GlobalOptions,
  env: TargetEnv = process.env,
): DaemonTarget {
  if (options.direct || isTrue(env.WARDEN_DIRECT)) return { kind: 'direct' };
  const config = loadConfig(options);
  const running = readRunningDaemon(config.home);
  // A daemon of this home serving another database (`--db`) is not this command's daemon.
  const served = config.storeUrl ? redactUrl(config.storeUrl) : config.databasePath;
  const own =
    running && (config.storeUrl ? running.database : resolve(running.database)) === served
      ? running
      : null;
  const token = () => env.WARDEN_TOKEN?.trim() || readToken(config.tokenFile);
  const explicit = options.url ?? (env.WARDEN_URL?.trim() || undefined);
  if (explicit !== undefined) {
    const source = options.url !== undefined ? 'flag' : 'env';
    const secret = token();
    if (!secret)
      throw new WardenError(
        'UNAUTHORIZED',
        `no token for the daemon at ${explicit}: set WARDEN_TOKEN (or make ${config.tokenFile} readable), or use the database with --direct`,
        { details: { url: explicit, source } },
      );
    return {
      kind: 'daemon',
      url: explicit,
      token: secret,
      source,
      local: own !== null && sameEndpoint(explicit, own.url),
    };
  }
  if (own) {
    const secret = token();
    // Without a token this user could not use the daemon anyway; the database may still work.
    if (secret)
      return { kind: 'daemon', url: own.url, token: secret, source: 'discovered', local: true };
  }
  return { kind: 'direct' };
}

/** What a command's daemon path gets. */
export interface DaemonSession {
  readonly client: WardenClient;
  readonly target: Extract<DaemonTarget, { kind: 'daemon' }>;
  /**
   * Gives up on the daemon before anything was changed through it: the command then works on
   * the database when the daemon is this home's, and fails with INVALID_PARAMS saying `why`
   * otherwise (the database is on the daemon's host).
   */
  needsDatabase(why: string): never;
}

class NeedsDatabase extends Error {}

/** The most records one ACP list call answers. */
export const DAEMON_PAGE = 1_000;

/** A `--limit` the daemon cannot answer in one call needs the database. */
export function checkLimit(session: DaemonSession, limit: number): void {
  if (limit > DAEMON_PAGE)
    session.needsDatabase(`through a daemon, --limit is at most ${DAEMON_PAGE} (got ${limit})`);
}

/** A list that filled a whole page may have left records out: that needs the database. */
export function checkWholePage(session: DaemonSession, length: number, what: string): void {
  if (length >= DAEMON_PAGE)
    session.needsDatabase(
      `the daemon answers at most ${DAEMON_PAGE} ${what} in one call, and there are more`,
    );
}

/**
 * Runs `daemon` when {@link resolveDaemonTarget} picks a daemon, `direct` otherwise. The client
 * is closed afterwards. Errors from the daemon are WardenErrors with the daemon's codes.
 */
export async function viaDaemonOr<T>(
  options: GlobalOptions,
  daemon: (session: DaemonSession) => Promise<T>,
  direct: () => Promise<T>,
): Promise<T> {
  const target = resolveDaemonTarget(options);
  if (target.kind === 'direct') return direct();
  let client: WardenClient;
  try {
    client = await WardenClient.connect({
      url: target.url,
      token: target.token,
      client: { name: 'warden-cli', version: VERSION },
      reconnect: false,
    });
  } catch (error) {
    if (!isWardenError(error, 'DAEMON_UNREACHABLE')) throw error;
    if (target.source === 'discovered') {
      process.stderr.write(
        style.dim(`the daemon of this home (${target.url}) did not answer; using the database\n`),
      );
      return direct();
    }
    throw new WardenError(
      'DAEMON_UNREACHABLE',
      `${error.message} (the URL came from ${target.source === 'flag' ? '--url' : 'WARDEN_URL'}); to use the database directly instead, add --direct`,
      { details: { url: target.url, source: target.source }, cause: error },
    );
  }
  try {
    return await daemon({
      client,
      target,
      needsDatabase: (why) => {
        throw new NeedsDatabase(why);
      },
    });
  } catch (error) {
    if (!(error instanceof NeedsDatabase)) throw error;
    if (target.local) return direct();
    throw new WardenError(
      'INVALID_PARAMS',
      `${error.message}: run it on the daemon's host with --direct`,
      { details: { url: target.url } },
    );
  } finally {
    await client.close();
  }
}

function readToken(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes'].includes(value.trim().toLowerCase());
}

/** Same host and port: `http://…` and `ws://…/acp` name the same daemon. */
function sameEndpoint(a: string, b: string): boolean {
  try {
    const [x, y] = [new URL(a), new URL(b)];
    const port = (u: URL) =>
      u.port || (u.protocol === 'https:' || u.protocol === 'wss:' ? '443' : '80');
    return x.hostname === y.hostname && port(x) === port(y);
  } catch {
    return false;
  }
}
