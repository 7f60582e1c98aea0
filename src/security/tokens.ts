/**
 * API tokens (DESIGN.md §8): named, scoped, optionally expiring bearer tokens for the daemon.
 *
 * A token reads `wdn_<id>_<secret>`: `<id>` is `tok_` and 32 hex digits (the store row's id),
 * `<secret>` 32 random bytes in base64url. The token text is returned once, by
 * {@link TokenService.create}; the store keeps only sha256(secret), so a copy of the database
 * does not yield a usable token. {@link TokenService.verify} hashes the presented secret and
 * compares the two hashes with `crypto.timingSafeEqual`. Creating and revoking write a
 * `token.created` / `token.revoked` event to the `system` session in the same transaction; the
 * events carry the id, name and scopes — never the secret or its hash.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { z } from 'zod';

import {
  checkParams,
  type Clock,
  clockParam,
  IdGenerator,
  param,
  parseScopes,
  randomToken,
  systemClock,
  type TokenScope,
  WardenError,
} from '../core/index.ts';
import { SessionDirectory, type Store, storeParam, type TokenRecord } from '../store/index.ts';
import { ADMIN_SCOPES, verifyAdmin } from './admin-token.ts';

/** The token text: `wdn_` + id + `_` + secret. The id has no `_` after `tok_`, the secret may. */
const TOKEN_PATTERN = /^wdn_(tok_[0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

/** A hash no secret has: compared against when the id is unknown, so timing does not tell. */
const NO_HASH = Buffer.alloc(32);

export interface TokenServiceOptions {
  readonly store: Store;
  /** @default a directory over `store` */
  readonly sessions?: SessionDirectory;
  /** @default systemClock */
  readonly clock?: Clock;
}

export interface CreateTokenInput {
  /** A label for people, 1-128 characters. */
  readonly name: string;
  /** Scopes as an array or a comma-separated string (`read,write`); see TOKEN_SCOPES. */
  readonly scopes: readonly TokenScope[] | string;
  /** Lifetime in ms from now; omit for a token that does not expire. */
  readonly expiresInMs?: number;
}

export interface CreatedToken {
  readonly id: string;
  /** The token text, shown once: it cannot be recovered later. */
  readonly token: string;
  readonly name: string;
  readonly scopes: readonly TokenScope[];
  readonly expires_at: number | null;
}

/** Who presented a valid credential. */
export interface Principal {
  /** `admin`: the admin token file; `token`: an API token. */
  readonly kind: 'admin' | 'token';
  /** `admin`, or the token id. */
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly TokenScope[];
}

/** A token as listed: everything but its hash. */
export type TokenInfo = Omit<TokenRecord, 'secret_hash'>;

const createArgs = z.object({
  input: param.options(
    {
      name: param.nonEmpty('a token name of 1-128 characters', 128),
      scopes: param.is<readonly TokenScope[] | string>(
        "scopes: an array such as ['read'] or a string such as 'read,write'",
        (v) => typeof v === 'string' || Array.isArray(v),
      ),
      expiresInMs: param.int(1).optional(),
    },
    "an input { name, scopes, expiresInMs? } (e.g. { name: 'ci', scopes: ['read'] })",
  ),
});

const serviceArgs = z.object({
  options: param.options(
    {
      store: storeParam,
      sessions: param
        .withMethods<SessionDirectory>('a SessionDirectory', ['system', 'ensure'])
        .optional(),
      clock: clockParam.optional(),
    },
    'options { store, sessions?, clock? }',
  ),
});

export class TokenService {
  readonly #store: Store;
  readonly #sessions: SessionDirectory;
  readonly #clock: Clock;
  readonly #ids: IdGenerator;

  constructor(options: TokenServiceOptions) {
    checkParams('new TokenService', serviceArgs, { options });
    this.#store = options.store;
    this.#clock = options.clock ?? options.store.clock ?? systemClock;
    this.#ids = new IdGenerator(this.#clock);
    this.#sessions = options.sessions ?? new SessionDirectory(this.#store, this.#ids, this.#clock);
  }

  /**
   * Creates a token and returns its text — the only time it is available. INVALID_PARAMS for a
   * bad name, an unknown scope (the message lists the valid ones) or a bad lifetime.
   */
  async create(input: CreateTokenInput): Promise<CreatedToken> {
    checkParams('TokenService.create', createArgs, { input });
    const scopes = parseScopes(input.scopes);
    const now = this.#clock.now();
    const id = `tok_${randomToken(16)}`;
    const secret = randomBytes(32).toString('base64url');
    const row: TokenRecord = {
      id,
      name: input.name,
      scopes,
      secret_hash: sha256Hex(secret),
      created_at: now,
      expires_at: input.expiresInMs === undefined ? null : now + input.expiresInMs,
      revoked_at: null,
      last_used_at: null,
    };
    const system = await this.#sessions.system();
    await this.#store.commit([
      { op: 'token.insert', row },
      {
        op: 'event',
        event: {
          session_id: system.id,
          type: 'token.created',
          trace_id: this.#ids.next('tr'),
          data: { id, name: row.name, scopes, expires_at: row.expires_at },
        },
      },
    ]);
    return { id, token: `wdn_${id}_${secret}`, name: row.name, scopes, expires_at: row.expires_at };
  }

  /**
   * The token's identity and scopes. UNAUTHORIZED (never saying more than why) when the text
   * is malformed, the id unknown, the secret wrong, or the token revoked or expired.
   */
  async verify(token: string): Promise<Principal> {
    const match = typeof token === 'string' ? TOKEN_PATTERN.exec(token) : null;
    if (!match) throw unauthorized('not a Warden API token (expected wdn_tok_…)', 'malformed');
    const [, id, secret] = match as unknown as [string, string, string];
    const row = await this.#store.getToken(id);
    const presented = createHash('sha256').update(secret, 'utf8').digest();
    const stored = row ? Buffer.from(row.secret_hash, 'hex') : NO_HASH;
    // Both are 32 bytes (a damaged stored hash is treated as wrong, not thrown on).
    const same = stored.length === 32 && timingSafeEqual(presented, stored);
    if (!row || !same) throw unauthorized('invalid API token', 'invalid');
    if (row.revoked_at !== null)
      throw unauthorized(`API token ${id} was revoked`, 'revoked', { token_id: id });
    if (row.expires_at !== null && row.expires_at <= this.#clock.now())
      throw unauthorized(`API token ${id} expired`, 'expired', { token_id: id });
    return { kind: 'token', id, name: row.name, scopes: row.scopes };
  }

  /**
   * A bearer credential: the admin token (`adminToken`, from ensureAdminToken) or an API token.
   * UNAUTHORIZED otherwise.
   */
  async authenticate(presented: string, adminToken: string): Promise<Principal> {
    if (verifyAdmin(presented, adminToken))
      return { kind: 'admin', id: 'admin', name: 'admin', scopes: ADMIN_SCOPES };
    return this.verify(presented);
  }

  /** Revokes a token. NOT_FOUND when unknown, INVALID_STATE when revoked already. */
  async revoke(id: string): Promise<void> {
    if (typeof id !== 'string' || id === '')
      throw new WardenError('INVALID_PARAMS', 'TokenService.revoke: expected a token id (tok_…)');
    const row = await this.#store.getToken(id);
    if (!row)
      throw new WardenError('NOT_FOUND', `token '${id}' does not exist`, {
        details: { what: 'token', id },
      });
    const system = await this.#sessions.system();
    await this.#store.commit([
      { op: 'token.revoke', id, now: this.#clock.now() },
      {
        op: 'event',
        event: {
          session_id: system.id,
          type: 'token.revoked',
          trace_id: this.#ids.next('tr'),
          data: { id, name: row.name },
        },
      },
    ]);
  }

  /** Every token, oldest first, without hashes. */
  async list(): Promise<TokenInfo[]> {
    return (await this.#store.listTokens()).map(({ secret_hash: _hash, ...info }) => info);
  }
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function unauthorized(
  message: string,
  reason: 'malformed' | 'invalid' | 'revoked' | 'expired',
  details: Record<string, unknown> = {},
): WardenError {
  return new WardenError('UNAUTHORIZED', message, { details: { reason, ...details } });
}
