/**
 * Shared-secret authentication inside `connect` (reference §2.4). `token` mode takes a Warden
 * API token (or the admin token) as `auth.token`, so an OpenClaw operator gets exactly the
 * scopes of its Warden token; `password` mode compares `auth.password` with a Warden secret in
 * constant time and grants the configured scopes; `none` (loopback listeners only, enforced by
 * the config schema) grants the configured scopes to anyone who can reach the socket.
 * Failures are answered with `details.code` (clients branch on it) and counted per client
 * address: past {@link FAILURE_LIMIT} in a window the address gets AUTH_RATE_LIMITED.
 */
import { randomUUID } from 'node:crypto';

import type { TokenScope } from '../../core/index.ts';
import { sameSecret } from '../../security/index.ts';
import type { Authenticate } from '../acp/auth.ts';
import type { Caller } from '../commands/index.ts';
import { gatewayError, GatewayFailure } from './frames.ts';

export type OpenClawAuthMode = 'token' | 'password' | 'none';

export interface OpenClawAuthSettings {
  readonly mode: OpenClawAuthMode;
  /** Password mode: the password (resolved from the Warden secret at each connect). */
  readonly password: () => string | null;
  /** The Warden scopes a password or `none` connection may be granted. */
  readonly scopes: readonly TokenScope[];
}

export interface ConnectAuth {
  readonly token?: string | undefined;
  readonly password?: string | undefined;
}

const FAILURE_LIMIT = 10;
const FAILURE_WINDOW_MS = 60_000;
const MAX_TRACKED = 10_000;

function authFailure(
  message: string,
  code: string,
  next: string,
  extra: Record<string, unknown> = {},
): GatewayFailure {
  return new GatewayFailure(
    gatewayError('INVALID_REQUEST', message, {
      code,
      canRetryWithDeviceToken: false,
      recommendedNextStep: next,
      ...extra,
    }),
  );
}

export class OpenClawAuthenticator {
  readonly #settings: () => OpenClawAuthSettings;
  readonly #authenticate: Authenticate;
  /** Failures per client address in the current window. */
  readonly #failures = new Map<string, { count: number; since: number }>();

  constructor(settings: () => OpenClawAuthSettings, authenticate: Authenticate) {
    this.#settings = settings;
    this.#authenticate = authenticate;
  }

  get mode(): OpenClawAuthMode {
    return this.#settings().mode;
  }

  /** The caller a `connect` stands for, or a GatewayFailure with `details.code`. */
  async authenticate(auth: ConnectAuth | undefined, address: string, now: number): Promise<Caller> {
    const window = this.#failures.get(address);
    if (window && now - window.since < FAILURE_WINDOW_MS && window.count >= FAILURE_LIMIT) {
      const retryAfterMs = FAILURE_WINDOW_MS - (now - window.since);
      throw new GatewayFailure(
        gatewayError(
          'INVALID_REQUEST',
          'unauthorized: too many failed authentication attempts; wait and retry',
          {
            code: 'AUTH_RATE_LIMITED',
            canRetryWithDeviceToken: false,
            recommendedNextStep: 'wait_then_retry',
          },
          { retryable: true, retryAfterMs },
        ),
      );
    }
    try {
      return await this.#check(auth, randomUUID());
    } catch (error) {
      this.#fail(address, now);
      throw error;
    }
  }

  #fail(address: string, now: number): void {
    const window = this.#failures.get(address);
    if (!window || now - window.since >= FAILURE_WINDOW_MS) {
      if (this.#failures.size >= MAX_TRACKED) this.#failures.clear();
      this.#failures.set(address, { count: 1, since: now });
    } else window.count++;
  }

  async #check(auth: ConnectAuth | undefined, connectionId: string): Promise<Caller> {
    const settings = this.#settings();
    const configured = (name: string): Caller => ({
      kind: 'token',
      id: `openclaw-${name}`,
      name: `openclaw:${name}`,
      scopes: new Set(settings.scopes),
      connectionId,
    });
    switch (settings.mode) {
      case 'none':
        return configured('none');
      case 'password': {
        const expected = settings.password();
        if (expected === null || expected === '')
          throw authFailure(
            'unauthorized: gateway password is not configured',
            'AUTH_PASSWORD_NOT_CONFIGURED',
            'update_auth_configuration',
          );
        if (auth?.password === undefined || auth.password === '')
          throw authFailure(
            'unauthorized: gateway password missing',
            'AUTH_PASSWORD_MISSING',
            'update_auth_credentials',
          );
        if (!sameSecret(auth.password, expected))
          throw authFailure(
            'unauthorized: gateway password mismatch',
            'AUTH_PASSWORD_MISMATCH',
            'update_auth_credentials',
          );
        return configured('password');
      }
      case 'token': {
        if (auth?.token === undefined || auth.token === '')
          throw authFailure(
            'unauthorized: gateway token missing (send a Warden API token as auth.token)',
            'AUTH_TOKEN_MISSING',
            'update_auth_credentials',
          );
        let caller: Caller;
        try {
          caller = await this.#authenticate(auth.token, connectionId);
        } catch {
          throw authFailure(
            'unauthorized: gateway token mismatch',
            'AUTH_TOKEN_MISMATCH',
            'update_auth_credentials',
          );
        }
        // A remote worker's attempt token acts on its own attempt only: never an operator.
        if (caller.kind === 'attempt')
          throw authFailure(
            'unauthorized: gateway token mismatch',
            'AUTH_TOKEN_MISMATCH',
            'update_auth_credentials',
          );
        return caller;
      }
    }
  }
}
